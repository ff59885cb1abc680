package tenants

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
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

// Decode reads every YAML or JSON document in data. Unknown fields,
// duplicate keys, unknown kinds and wrong apiVersions are errors. Every
// document is tried, so all problems are reported together.
func Decode(file string, data []byte) ([]Document, error) {
	var docs []Document
	var list ErrorList
	for i, raw := range splitDocuments(data) {
		idx := i + 1
		obj, err := decodeOne(raw)
		if err != nil {
			var fe ErrorList
			if errors.As(err, &fe) {
				list = append(list, fe.WithSource(file, idx, "", "")...)
			} else {
				list = append(list, FieldError{File: file, Doc: idx, Cause: err.Error()})
			}
			continue
		}
		docs = append(docs, Document{File: file, Index: idx, Object: obj})
	}
	if len(list) > 0 {
		return nil, list
	}
	return docs, nil
}

// DecodeObject strictly decodes one JSON or YAML object of any kind.
func DecodeObject(data []byte) (Object, error) { return decodeOne(data) }

func decodeOne(raw []byte) (Object, error) {
	var tm struct {
		TypeMeta `json:",inline"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	// Stored values and most API input are JSON objects: decode them with
	// encoding/json directly, ten times faster than going through YAML,
	// which matters when the store loads thousands of tenants.
	isJSON := json.Valid(raw) && bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{"))
	unmarshal := yaml.Unmarshal
	if isJSON {
		unmarshal = func(b []byte, v any, _ ...yaml.JSONOpt) error { return json.Unmarshal(b, v) }
	}
	if err := unmarshal(raw, &tm); err != nil {
		return nil, fmt.Errorf("invalid YAML/JSON: %w", err)
	}
	var obj Object
	switch tm.Kind {
	case KindTenant:
		obj = &Tenant{}
	case KindTier:
		obj = &Tier{}
	case KindMeshConfig:
		obj = &MeshConfig{}
	case KindSharedService:
		obj = &SharedService{}
	case "":
		return nil, ErrorList{{Path: "kind", Cause: "missing kind (Tenant, Tier, MeshConfig or SharedService)"}}
	default:
		return nil, ErrorList{{Kind: tm.Kind, Name: tm.Metadata.Name, Path: "kind", Cause: fmt.Sprintf("unknown kind %q (want Tenant, Tier, MeshConfig or SharedService)", tm.Kind)}}
	}
	if tm.APIVersion != APIVersion {
		return nil, ErrorList{{Kind: tm.Kind, Name: tm.Metadata.Name, Path: "apiVersion", Cause: fmt.Sprintf("got %q, want %q", tm.APIVersion, APIVersion)}}
	}
	strict := yaml.UnmarshalStrict
	if isJSON {
		strict = strictJSON
	}
	if err := strict(raw, obj); err != nil {
		return nil, ErrorList{{Kind: tm.Kind, Name: tm.Metadata.Name, Cause: cleanDecodeError(err)}}
	}
	return obj, nil
}

// strictJSON decodes one JSON value, refusing unknown fields and trailing data.
func strictJSON(b []byte, v any, _ ...yaml.JSONOpt) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

// cleanDecodeError turns encoding/json's Go-centric messages into ones
// that name the manifest field.
func cleanDecodeError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error unmarshaling JSON: while decoding JSON: ")
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	msg = strings.Replace(msg, "json: unknown field", "unknown field", 1)
	return msg
}

// splitDocuments splits a YAML stream on "---" lines, dropping documents
// that hold nothing but whitespace and comments.
func splitDocuments(data []byte) [][]byte {
	var out [][]byte
	var cur bytes.Buffer
	flush := func() {
		if hasContent(cur.Bytes()) {
			out = append(out, append([]byte(nil), cur.Bytes()...))
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "---") && strings.TrimSpace(strings.TrimLeft(line, "-")) == "" {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return out
}

func hasContent(b []byte) bool {
	for _, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}

// Load decodes a file, every *.yaml/*.yml/*.json file of a directory
// (sorted, not recursive), or standard input for "-".
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
	if len(list) > 0 {
		return nil, list
	}
	return docs, nil
}

// EncodeJSON is the canonical stored form of an object.
func EncodeJSON(o Object) ([]byte, error) { return json.Marshal(o) }
