package validate

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// seg is one step of a field path: a field (with a list index or map
// key), or an Any's payload type.
type seg struct {
	field string
	index int    // list index, -1 if none
	key   string // map key, if any
	typ   string // an Any payload's type name (field unset)
}

// path is the walk's position, kept as a stack the walk pushes and pops,
// and rendered only when an error needs it: most resources have none, so
// the walk allocates nothing per field.
type path struct{ segs []seg }

func (p *path) push(s seg) { p.segs = append(p.segs, s) }
func (p *path) pop()       { p.segs = p.segs[:len(p.segs)-1] }

func (p *path) String() string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	for _, q := range p.segs {
		if q.typ != "" {
			fmt.Fprintf(&b, "<%s>", q.typ)
			continue
		}
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
	return b.String()
}

// walker visits a message and every message below it that can matter,
// unpacking every Any. visit sees each message with payload set for the
// root and for every Any's payload: where ValidateAll must run, since the
// generated validation covers everything else below them. The path it
// passes is only valid during the call.
type walker struct {
	visit     func(p *path, m proto.Message, payload bool)
	unpackErr func(p *path, err error) // nil: ignore (Deep reports them)
	at        *path
}

func (w walker) walk(_ *path, m proto.Message, payload bool) {
	w.at = &path{segs: make([]seg, 0, 16)}
	w.descend(m, payload)
}

func (w *walker) descend(m proto.Message, payload bool) {
	w.visit(w.at, m, payload)
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
				w.at.push(seg{field: name, index: -1, key: k.String()})
				w.value(mv.Message())
				w.at.pop()
				return true
			})
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				w.at.push(seg{field: name, index: i})
				w.value(l.Get(i).Message())
				w.at.pop()
			}
		default:
			w.at.push(seg{field: name, index: -1})
			w.value(v.Message())
			w.at.pop()
		}
		return true
	})
}

func (w *walker) value(m protoreflect.Message) {
	if m.Descriptor().FullName() != anyName {
		w.descend(m.Interface(), false)
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
			w.unpackErr(w.at, err)
		}
		return
	}
	w.at.push(seg{index: -1, typ: string(inner.ProtoReflect().Descriptor().Name())})
	w.descend(inner, true)
	w.at.pop()
}

// relevant reports whether a message of type md can hold, at any depth,
// an Any or a message some rule looks at. The walk skips the rest (most
// of a resource: durations, wrappers, metadata structs, plain settings),
// which keeps the gate's cost near that of ValidateAll alone.
func relevant(md protoreflect.MessageDescriptor) bool {
	if v, ok := (*relevantCache.Load())[md.FullName()]; ok {
		return v
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
	relevantMu.Lock()
	next := make(map[protoreflect.FullName]bool, len(*relevantCache.Load())+1)
	for k, v := range *relevantCache.Load() {
		next[k] = v
	}
	next[md.FullName()] = found
	relevantCache.Store(&next)
	relevantMu.Unlock()
	return found
}

// relevantCache is read on every field of every walk and written once per
// message type: a map replaced whole under relevantMu, read without a lock.
var (
	relevantMu    sync.Mutex
	relevantCache atomic.Pointer[map[protoreflect.FullName]bool]
)

func init() { relevantCache.Store(&map[protoreflect.FullName]bool{}) }
