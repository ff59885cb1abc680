package tenants

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// Document is one decoded object and where it came from.
type Document struct {
	File   string
	Index  int // 1-based position in File
	Object Object
}

// Kind of the document's object.
func (d Document) Kind() Kind { return d.Object.GetTypeMeta().Kind }

// Name of the document's object.
func (d Document) Name() string { return d.Object.GetMeta().Name }

// MaxDocumentBytes is the largest encoded object the store accepts: etcd
// refuses requests over 1.5 MiB, and a transaction carries some overhead.
const MaxDocumentBytes = 1536*1024 - 4096

// Decode reads every YAML or JSON document in data (splitDocuments says
// how a stream is cut into documents). Unknown fields, duplicate keys,
// values of the wrong type, unknown kinds and wrong apiVersions are
// errors, reported at their field paths. Every document is tried, so all
// problems are reported together: the error is an ErrorList naming file
// and document of each problem, and the documents that did decode are
// returned beside it, so that the caller can validate them too and report
// everything in one pass. A caller that needs every document must treat a
// non-nil error as failure.
func Decode(file string, data []byte) ([]Document, error) {
	var docs []Document
	var list ErrorList
	for i, raw := range splitDocuments(data) {
		idx := i + 1
		var errs ErrorList
		if raw.problem != "" {
			errs = ErrorList{{Cause: raw.problem}}
			if !hasContentLine(raw.data) {
				list = append(list, errs.WithSource(file, idx, "", "")...)
				continue
			}
		}
		obj, more := decodeOne(raw.data, raw.line)
		if errs = append(errs, more...); len(errs) > 0 {
			// A marker problem refuses the document even when it decodes:
			// what follows "..." was probably meant to be in it.
			list = append(list, errs.WithSource(file, idx, "", "")...)
			continue
		}
		docs = append(docs, Document{File: file, Index: idx, Object: obj})
	}
	return docs, list.Err()
}

// DecodeObject strictly decodes one JSON or YAML object of any kind. The
// error, if any, is an ErrorList.
func DecodeObject(data []byte) (Object, error) {
	obj, errs := decodeOne(data, 1)
	if len(errs) > 0 {
		return nil, errs
	}
	return obj, nil
}

// decodeOne decodes one document whose first line is line of its file.
func decodeOne(raw []byte, line int) (Object, ErrorList) {
	// Stored values and most API input are JSON objects: they skip the
	// YAML parser, ten times slower, which matters when the store loads
	// thousands of tenants. JSON that is not valid (or YAML's flow style,
	// {kind: Tenant}) is read as YAML.
	js := raw
	var list ErrorList
	if !json.Valid(raw) {
		var err error
		if js, list, err = yamlToJSON(raw, line); err != nil {
			return nil, ErrorList{{Cause: err.Error()}}
		}
	}
	if len(js) > maxDecodeBytes {
		// Checked again, exactly, on the stored form (checkEncodedSize);
		// this stops a few lines of YAML aliases that expand to megabytes
		// before the strict check walks them.
		return nil, ErrorList{{Cause: fmt.Sprintf("the document is %d bytes as JSON (YAML aliases expanded), far more than the store takes (%d)", len(js), MaxDocumentBytes)}}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil || top == nil {
		return nil, ErrorList{{Cause: "a document must be a mapping (an object) of apiVersion, kind, metadata and spec"}}
	}
	var tm TypeMeta
	var name string
	kindErr := json.Unmarshal(top["kind"], &tm.Kind)
	apiErr := json.Unmarshal(top["apiVersion"], &tm.APIVersion)
	var meta struct {
		Name json.RawMessage `json:"name"`
	}
	if json.Unmarshal(top["metadata"], &meta) == nil {
		// A name that is no string is reported by the strict check.
		if json.Unmarshal(meta.Name, &name) != nil {
			name = ""
		}
	}
	// Without a known kind and apiVersion the fields cannot be checked;
	// what the YAML conversion found is reported all the same.
	fail := func(e FieldError) ErrorList { return append(ErrorList{e}, list...).WithSource("", 0, e.Kind, e.Name) }
	typ, ok := kindTypes[tm.Kind]
	switch {
	case top["kind"] == nil || (kindErr == nil && tm.Kind == ""):
		return nil, fail(FieldError{Path: "kind", Cause: "missing kind (Tenant, Tier, MeshConfig or SharedService)"})
	case kindErr != nil:
		return nil, fail(FieldError{Path: "kind", Cause: "want a string: Tenant, Tier, MeshConfig or SharedService"})
	case !ok:
		return nil, fail(FieldError{Kind: tm.Kind, Name: name, Path: "kind", Cause: fmt.Sprintf("unknown kind %q (want Tenant, Tier, MeshConfig or SharedService)", tm.Kind)})
	case apiErr != nil || tm.APIVersion != APIVersion:
		return nil, fail(FieldError{Kind: tm.Kind, Name: name, Path: "apiVersion", Cause: fmt.Sprintf("got %s, want %q", clip(string(top["apiVersion"])), APIVersion)})
	}
	strict, err := checkStrictJSON(js, typ)
	var deep tooDeep
	switch {
	case errors.As(err, &deep):
		return nil, ErrorList{{Kind: tm.Kind, Name: name, Path: deep.path, Cause: err.Error()}}
	case err != nil:
		return nil, ErrorList{{Kind: tm.Kind, Name: name, Cause: "invalid JSON: " + err.Error()}}
	}
	list = append(list, strict...)
	if len(list) > 0 {
		return nil, list.WithSource("", 0, tm.Kind, name)
	}
	obj := reflect.New(typ).Interface().(Object)
	if err := json.Unmarshal(js, obj); err != nil {
		return nil, ErrorList{{Kind: tm.Kind, Name: name, Cause: cleanDecodeError(err)}}
	}
	return obj, nil
}

// maxDecodeBytes bounds a document's JSON form before it is decoded:
// twice what etcd stores, so that whitespace never decides.
const maxDecodeBytes = 2 * MaxDocumentBytes

// kindTypes are the Go types of the document kinds.
var kindTypes = map[Kind]reflect.Type{
	KindTenant:        reflect.TypeFor[Tenant](),
	KindTier:          reflect.TypeFor[Tier](),
	KindMeshConfig:    reflect.TypeFor[MeshConfig](),
	KindSharedService: reflect.TypeFor[SharedService](),
}

// cleanDecodeError turns encoding/json's Go-centric messages into ones
// that name the manifest field.
func cleanDecodeError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	return msg
}

// Load decodes a file, every *.yaml/*.yml/*.json file of a directory
// (sorted, not recursive), or standard input for "-". Like Decode, it
// returns the documents that decoded beside the ErrorList of those that
// did not.
func Load(path string, stdin io.Reader) ([]Document, error) {
	if path == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return Decode("-", data)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		files = files[:0]
		for _, e := range entries {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".json":
				if !e.IsDir() {
					files = append(files, filepath.Join(path, e.Name()))
				}
			}
		}
		sort.Strings(files)
	}
	var docs []Document
	var list ErrorList
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		d, err := Decode(f, data)
		var fe ErrorList
		switch {
		case errors.As(err, &fe):
			list = append(list, fe...)
		case err != nil:
			return nil, err
		}
		docs = append(docs, d...)
	}
	return docs, list.Err()
}

// MergeErrors returns the errors of a and b in the order of the input:
// files in the order they first appear (a's first), documents by index
// within a file, and the order they were found within a document. It
// joins the decode errors of some documents with the validation errors
// of the others into one report.
func MergeErrors(a, b ErrorList) ErrorList {
	out := append(append(ErrorList(nil), a...), b...)
	fileOrder := map[string]int{}
	for _, e := range out {
		if _, ok := fileOrder[e.File]; !ok {
			fileOrder[e.File] = len(fileOrder)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if fi, fj := fileOrder[out[i].File], fileOrder[out[j].File]; fi != fj {
			return fi < fj
		}
		return out[i].Doc < out[j].Doc
	})
	return out
}

// EncodeJSON is the canonical stored form of an object.
func EncodeJSON(o Object) ([]byte, error) { return json.Marshal(o) }
