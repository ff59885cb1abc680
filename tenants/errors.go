package tenants

import (
	"fmt"
	"strconv"
	"strings"
)

// Path is a field path inside a document, such as spec.routes[1].upstream.
type Path string

// Child returns the path of a named field below p.
func (p Path) Child(name string) Path {
	if p == "" {
		return Path(name)
	}
	return p + "." + Path(name)
}

// Index returns the path of element i of the list at p.
func (p Path) Index(i int) Path { return p + "[" + Path(strconv.Itoa(i)) + "]" }

// Key returns the path of a map entry below p.
func (p Path) Key(k string) Path { return p + "[" + Path(strconv.Quote(k)) + "]" }

// FieldError is one problem with one document.
type FieldError struct {
	File  string // source file, "-" for stdin, "etcd" for stored values
	Doc   int    // 1-based document index in File; 0 when unknown
	Kind  Kind
	Name  string
	Path  Path
	Cause string
}

func (e FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Doc > 0 {
			fmt.Fprintf(&b, " (document %d)", e.Doc)
		}
		b.WriteString(": ")
	}
	if e.Kind != "" || e.Name != "" {
		fmt.Fprintf(&b, "%s %q: ", e.Kind, e.Name)
	}
	if e.Path != "" {
		b.WriteString(string(e.Path))
		b.WriteString(": ")
	}
	b.WriteString(e.Cause)
	return b.String()
}

// ErrorList collects every problem found, so a user fixes them in one pass.
type ErrorList []FieldError

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Err returns nil for an empty list, so callers can `return list.Err()`.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// WithSource stamps file, document, kind and name on every error.
func (l ErrorList) WithSource(file string, doc int, kind Kind, name string) ErrorList {
	out := make(ErrorList, len(l))
	for i, e := range l {
		e.File, e.Doc = file, doc
		if e.Kind == "" {
			e.Kind = kind
		}
		if e.Name == "" {
			e.Name = name
		}
		out[i] = e
	}
	return out
}

// errs accumulates FieldErrors during validation.
type errs struct{ list ErrorList }

func (e *errs) add(p Path, format string, args ...any) {
	e.list = append(e.list, FieldError{Path: p, Cause: fmt.Sprintf(format, args...)})
}
