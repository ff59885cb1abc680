package validate

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Resource checks one resource as Envoy would on receipt: Deep (every
// proto rule, through every Any) and then Envoy's load-time rules for
// every message inside it that has some (rules). Errors name the field
// path below the resource.
func Resource(m proto.Message) error { return resource(m, nil) }

// resource is Resource with an extra check run on every message of the
// same walk (nil for none).
func resource(m proto.Message, extra func(proto.Message) []error) error {
	var errs []error
	if rule := rootRules[m.ProtoReflect().Descriptor().FullName()]; rule != nil {
		errs = append(errs, rule(nil, m)...)
	}
	// One walk does both: ValidateAll where Deep would run it, and the
	// rules of every message on the way.
	deep := deepVisitor(&errs)
	walker{
		visit: func(p *path, m proto.Message, payload bool) {
			deep(p, m, payload)
			if rule := rules[m.ProtoReflect().Descriptor().FullName()]; rule != nil {
				for _, err := range rule(p, m) {
					errs = append(errs, at(p, err))
				}
			}
			if extra != nil {
				for _, err := range extra(m) {
					errs = append(errs, at(p, err))
				}
			}
		},
		unpackErr: func(p *path, err error) { errs = append(errs, at(p, err)) },
	}.walk(nil, m, true)
	return errors.Join(errs...)
}

// rule checks one message; it need not descend (walk visits every message).
// p is where m sits (nil at the root), for the few rules that depend on
// it.
type rule func(p *path, m proto.Message) []error

// rules are Envoy's load-time rules by message type. Each rule's file cites
// the Envoy source it copies.
var rules = map[protoreflect.FullName]rule{}

// rootRules apply to a message only when it is the resource itself.
var rootRules = map[protoreflect.FullName]rule{}

func register[T proto.Message](f func(T) []error) {
	add(rules, func(_ *path, m T) []error { return f(m) })
}

// registerAt registers a rule that needs to know where its message sits.
func registerAt[T proto.Message](f func(*path, T) []error) { add(rules, f) }

func registerRoot[T proto.Message](f func(T) []error) {
	add(rootRules, func(_ *path, m T) []error { return f(m) })
}

func add[T proto.Message](to map[protoreflect.FullName]rule, f func(*path, T) []error) {
	var zero T
	to[zero.ProtoReflect().Descriptor().FullName()] = func(p *path, m proto.Message) []error {
		t, ok := m.(T)
		if !ok {
			return []error{fmt.Errorf("%T is not a %T", m, zero)}
		}
		return f(p, t)
	}
}
