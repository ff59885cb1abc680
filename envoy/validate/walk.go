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

// perFilterConfig reports whether the message at p is the payload of a
// typed_per_filter_config entry (directly, or inside a FilterConfig
// wrapper's config).
func (p *path) perFilterConfig() bool {
	if p == nil {
		return false
	}
	for i := len(p.segs) - 1; i >= 0; i-- {
		switch s := p.segs[i]; {
		case s.typ != "" && i == len(p.segs)-1:
			continue // the payload itself
		case s.field == "typed_per_filter_config":
			return true
		case s.typ == "FilterConfig" || s.field == "config":
			continue
		default:
			return false
		}
	}
	return false
}

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
	w.at = pathPool.Get().(*path)
	w.at.segs = w.at.segs[:0]
	w.descend(m, payload)
	pathPool.Put(w.at)
}

// pathPool reuses path stacks across walks (a walk per resource, tens of
// thousands per full translation).
var pathPool = sync.Pool{New: func() any { return &path{segs: make([]seg, 0, 16)} }}

func (w *walker) descend(m proto.Message, payload bool) {
	w.visit(w.at, m, payload)
	r := m.ProtoReflect()
	for _, fd := range relevantFields(r.Descriptor()) {
		if !r.Has(fd) {
			continue
		}
		v := r.Get(fd)
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
	}
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

// relevantFields are the message fields of md that can hold, at any
// depth, an Any or a message some rule looks at. The walk visits only
// those; the rest of a resource (durations, wrappers, metadata structs,
// scalars) is left to ValidateAll, which keeps the gate's cost near that
// of ValidateAll alone. Computed once per message type.
func relevantFields(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	if fs, ok := (*fieldCache.Load())[md.FullName()]; ok {
		return fs
	}
	var out []protoreflect.FieldDescriptor
	fs := md.Fields()
	for i := 0; i < fs.Len(); i++ {
		f := fs.Get(i)
		t := f.Message()
		if f.IsMap() {
			t = f.MapValue().Message()
		}
		if t != nil && reaches(t) {
			out = append(out, f)
		}
	}
	fieldMu.Lock()
	next := make(map[protoreflect.FullName][]protoreflect.FieldDescriptor, len(*fieldCache.Load())+1)
	for k, v := range *fieldCache.Load() {
		next[k] = v
	}
	next[md.FullName()] = out
	fieldCache.Store(&next)
	fieldMu.Unlock()
	return out
}

// fieldCache is read on every message of every walk and written once per
// message type: a map replaced whole under fieldMu, read without a lock.
var (
	fieldMu    sync.Mutex
	fieldCache atomic.Pointer[map[protoreflect.FullName][]protoreflect.FieldDescriptor]
)

func init() {
	fieldCache.Store(&map[protoreflect.FullName][]protoreflect.FieldDescriptor{})
}

// reaches reports whether a message of type md is, or can hold at any
// depth, an Any or a message a rule looks at.
func reaches(md protoreflect.MessageDescriptor) bool {
	seen := map[protoreflect.FullName]bool{}
	queue := []protoreflect.MessageDescriptor{md}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d.FullName()] {
			continue
		}
		seen[d.FullName()] = true
		if d.FullName() == anyName || rules[d.FullName()] != nil || references[d.FullName()] {
			return true
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
	return false
}
