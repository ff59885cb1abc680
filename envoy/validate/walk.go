package validate

import (
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// path is a field path built as the walk descends and rendered only when
// an error needs it (most resources have none).
type path struct {
	parent *path
	field  string // field name, or "" for an Any's payload
	index  int    // list index, -1 if none
	key    string // map key, if any
	typ    string // an Any payload's type name
}

func (p *path) String() string {
	if p == nil {
		return ""
	}
	var parts []*path
	for q := p; q != nil; q = q.parent {
		parts = append(parts, q)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		q := parts[i]
		switch {
		case q.typ != "":
			fmt.Fprintf(&b, "<%s>", q.typ)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(q.field)
			if q.index >= 0 {
				fmt.Fprintf(&b, "[%d]", q.index)
			} else if q.key != "" {
				fmt.Fprintf(&b, "[%q]", q.key)
			}
		}
	}
	return b.String()
}

// walker visits a message and every message below it that can matter,
// unpacking every Any. visit sees each message with payload set for the
// root and for every Any's payload: where ValidateAll must run, since the
// generated validation covers everything else below them.
type walker struct {
	visit     func(p *path, m proto.Message, payload bool)
	unpackErr func(p *path, err error) // nil: ignore (Deep reports them)
}

func (w walker) walk(p *path, m proto.Message, payload bool) {
	w.visit(p, m, payload)
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		md := fd.Message()
		if fd.IsMap() {
			md = fd.MapValue().Message()
		}
		if md == nil || !relevant(md) {
			return true
		}
		name := string(fd.Name())
		switch {
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				w.value(&path{parent: p, field: name, index: -1, key: k.String()}, mv.Message())
				return true
			})
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				w.value(&path{parent: p, field: name, index: i}, l.Get(i).Message())
			}
		default:
			w.value(&path{parent: p, field: name, index: -1}, v.Message())
		}
		return true
	})
}

func (w walker) value(p *path, m protoreflect.Message) {
	if m.Descriptor().FullName() != anyName {
		w.walk(p, m.Interface(), false)
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
			w.unpackErr(p, err)
		}
		return
	}
	w.walk(&path{parent: p, index: -1, typ: string(inner.ProtoReflect().Descriptor().Name())}, inner, true)
}

// relevant reports whether a message of type md can hold, at any depth,
// an Any or a message some rule looks at. The walk skips the rest (most
// of a resource: durations, wrappers, metadata structs, plain settings),
// which keeps the gate's cost near that of ValidateAll alone.
func relevant(md protoreflect.MessageDescriptor) bool {
	if v, ok := relevantCache.Load(md.FullName()); ok {
		return v.(bool)
	}
	seen := map[protoreflect.FullName]bool{}
	queue := []protoreflect.MessageDescriptor{md}
	found := false
	for len(queue) > 0 && !found {
		d := queue[0]
		queue = queue[1:]
		if seen[d.FullName()] {
			continue
		}
		seen[d.FullName()] = true
		if d.FullName() == anyName || rules[d.FullName()] != nil || references[d.FullName()] {
			found = true
			break
		}
		fs := d.Fields()
		for i := 0; i < fs.Len(); i++ {
			f := fs.Get(i)
			if f.IsMap() {
				if vm := f.MapValue().Message(); vm != nil {
					queue = append(queue, vm)
				}
			} else if f.Message() != nil {
				queue = append(queue, f.Message())
			}
		}
	}
	relevantCache.Store(md.FullName(), found)
	return found
}

var relevantCache sync.Map // protoreflect.FullName → bool
