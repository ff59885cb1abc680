package validate

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// Resource checks one resource as Envoy would on receipt: Deep (every
// proto rule, through every Any) and then Envoy's load-time rules for
// every message inside it that has some (rules). Errors name the field
// path below the resource.
func Resource(m proto.Message) error {
	if err := Deep(m); err != nil {
		return err
	}
	var errs []error
	if rule := rootRules[m.ProtoReflect().Descriptor().FullName()]; rule != nil {
		errs = append(errs, rule(m)...)
	}
	walker{visit: func(path string, m proto.Message, _ bool) {
		if rule := rules[m.ProtoReflect().Descriptor().FullName()]; rule != nil {
			for _, err := range rule(m) {
				errs = append(errs, at(path, err))
			}
		}
	}}.walk("", m, true)
	return errors.Join(errs...)
}

// rule checks one message; it need not descend (walk visits every message).
type rule func(proto.Message) []error

// rules are Envoy's load-time rules by message type. Each rule's file cites
// the Envoy source it copies.
var rules = map[protoreflect.FullName]rule{}

// rootRules apply to a message only when it is the resource itself.
var rootRules = map[protoreflect.FullName]rule{}

func register[T proto.Message](f func(T) []error) { add(rules, f) }

func registerRoot[T proto.Message](f func(T) []error) { add(rootRules, f) }

func add[T proto.Message](to map[protoreflect.FullName]rule, f func(T) []error) {
	var zero T
	to[zero.ProtoReflect().Descriptor().FullName()] = func(m proto.Message) []error {
		t, ok := m.(T)
		if !ok {
			return []error{fmt.Errorf("%T is not a %T", m, zero)}
		}
		return f(t)
	}
}

// walker visits a message and every message below it, unpacking every
// Any. visit sees each message with payload set for the root and for
// every Any's payload (where ValidateAll must run: it covers the rest).
type walker struct {
	visit     func(path string, m proto.Message, payload bool)
	unpackErr func(path string, err error) // nil: ignore (Deep reports them)
}

func (w walker) walk(path string, m proto.Message, payload bool) {
	w.visit(path, m, payload)
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || (fd.IsMap() && fd.MapValue().Message() == nil) {
			return true
		}
		p := join(path, string(fd.Name()))
		switch {
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				w.value(fmt.Sprintf("%s[%q]", p, k.String()), mv.Message())
				return true
			})
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				w.value(fmt.Sprintf("%s[%d]", p, i), l.Get(i).Message())
			}
		default:
			w.value(p, v.Message())
		}
		return true
	})
}

func (w walker) value(path string, m protoreflect.Message) {
	if m.Descriptor().FullName() != anyName {
		w.walk(path, m.Interface(), false)
		return
	}
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		a = &anypb.Any{}
		proto.Merge(a, m.Interface())
	}
	inner, err := Unpack(a)
	if err != nil {
		if w.unpackErr != nil {
			w.unpackErr(path, err)
		}
		return
	}
	w.walk(path+"<"+string(inner.ProtoReflect().Descriptor().Name())+">", inner, true)
}
