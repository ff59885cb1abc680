package tenants

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v2"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
)

// FuzzSplitDocuments checks splitDocuments against two references. Each
// input is used twice:
//
//   - as a YAML stream: whenever every document the splitter returns
//     parses, the documents are, in order, the ones the YAML parser finds
//     in the whole stream (go.yaml.in/yaml/v2, the parser behind
//     sigs.k8s.io/yaml) — nothing dropped, nothing merged, nothing
//     invented. Where k8s.io/apimachinery's YAMLReader reads the stream
//     without error and the stream uses nothing it does not know (BOMs,
//     "...", CR and Unicode line breaks, directives, "---#"), the
//     documents are byte for byte the ones it returns;
//   - as a recipe (fuzzRecipe): N documents joined with separators of
//     every form must split into those N documents.
//
// Seeds are in testdata/fuzz/FuzzSplitDocuments.
func FuzzSplitDocuments(f *testing.F) {
	for _, s := range []string{
		"a: 1\n--- # the tenant\nb: 2\n",
		"a: 1\n...\nb: 2\n",
		"\uFEFFa: 1\n\uFEFF---\nb: 2\n",
		"a: 1\r\n---\r\nb: 2\r\n",
		"a: |\n  ---\n  ...\n---\nb: 2\n",
		"%YAML 1.1\n---\na: 1\n...\n%YAML 1.1\n--- {b: 2}\n",
		"a: 1\u2028---\u2028b: 2",
		"---#x\na: 1\n",
		"\x00\x01\x02\x03\x04\x05\x06\x07",
		"\x05\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSplitAgainstParser(t, data)
		checkSplitAgainstYAMLReader(t, data)
		checkSplitRecipe(t, data)
	})
}

// yamlDocs parses a stream with the YAML parser, strictly as decodeOne
// does, and returns its non-null documents, printed. ok is false when the
// stream does not parse.
func yamlDocs(data []byte) (docs []string, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.SetStrict(true)
	for range 10000 {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return docs, true
		}
		if err != nil {
			return nil, false
		}
		if v != nil {
			docs = append(docs, fmt.Sprintf("%#v", v))
		}
	}
	return nil, false
}

// stripLineBOMs drops a BOM at the start of every line, as the splitter
// does: the parser skips one at column 0 but then counts it as a column,
// so that "\uFEFF---" is content to it, a separator to the splitter.
func stripLineBOMs(data []byte) []byte {
	var out []byte
	for rest := data; len(rest) > 0; {
		var line, brk []byte
		line, brk, rest = nextLine(rest)
		for bytes.HasPrefix(line, bom) {
			line = line[len(bom):]
		}
		out = append(append(out, line...), brk...)
	}
	return out
}

func checkSplitAgainstParser(t *testing.T, data []byte) {
	var got []string
	for _, d := range splitDocuments(data) {
		if d.problem != "" {
			return // reported, not dropped
		}
		docs, ok := yamlDocs(d.data)
		if !ok {
			return // reported by decodeOne, not dropped
		}
		if len(docs) > 1 {
			t.Fatalf("one split document holds %d YAML documents (decodeOne would refuse it, but the splitter missed a marker):\n%q", len(docs), d.data)
		}
		got = append(got, docs...)
	}
	want, ok := yamlDocs(stripLineBOMs(data))
	if !ok {
		return
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("split documents differ from the parser's\n got: %q\nwant: %q\ninput: %q", got, want, data)
	}
}

func checkSplitAgainstYAMLReader(t *testing.T, data []byte) {
	for rest := data; len(rest) > 0; {
		var line, brk []byte
		line, brk, rest = nextLine(rest)
		if bytes.Contains(line, bom) || (len(brk) > 0 && brk[0] != '\n') || bytes.HasPrefix(line, []byte("...")) ||
			bytes.HasPrefix(line, []byte("%")) || (bytes.HasPrefix(line, []byte("---")) && !isMarker(line, "---")) {
			return // outside what YAMLReader knows
		}
	}
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var want []string
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return
		}
		// YAMLReader keeps the separator lines that precede a document's
		// first line; they are no part of the document.
		doc = dropLeadingSeparators(doc)
		if hasContentLine(doc) {
			want = append(want, strings.TrimRight(string(doc), "\n"))
		}
	}
	var got []string
	for _, d := range splitDocuments(data) {
		got = append(got, strings.TrimRight(string(d.data), "\n"))
	}
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		t.Fatalf("split documents differ from YAMLReader's\n got: %q\nwant: %q\ninput: %q", got, want, data)
	}
}

func dropLeadingSeparators(doc []byte) []byte {
	for len(doc) > 0 {
		line, _, rest := nextLine(doc)
		if !isMarker(line, "---") || isContentLine(bytes.TrimLeft(line[3:], " \t")) {
			return doc
		}
		doc = rest
	}
	return doc
}

// fuzzRecipe reads a few choices from fuzz bytes.
type fuzzRecipe struct{ b []byte }

func (r *fuzzRecipe) next(n int) int {
	if len(r.b) == 0 {
		return 0
	}
	v := int(r.b[0]) % n
	r.b = r.b[1:]
	return v
}

// separators join two documents. Each either ends the first document or
// starts the second, in every spelling YAML and the tools around it use.
var separators = []string{
	"---\n",
	"--- # the tenant\n",
	"---\t# tab, then a comment\n",
	"---   \n",
	"...\n",
	"... # end\n---\n",
	"...\n# between\n---\n",
	"# a comment line first\n---\n",
	"---\n---\n",
	"---\n# only a comment\n---\n",
	"\uFEFF---\n",
	"---\n\uFEFF",
	"...\n%YAML 1.1\n---\n",
	"---\u2028",
}

// checkSplitRecipe builds documents from the recipe, joins them and
// splits them again: documents in = documents out.
func checkSplitRecipe(t *testing.T, data []byte) {
	r := &fuzzRecipe{b: data}
	n := 1 + r.next(6)
	var in strings.Builder
	if r.next(2) == 1 {
		in.WriteString("\uFEFF")
	}
	for range r.next(3) {
		in.WriteString("# leading comment\n")
	}
	values := make([]string, n)
	for i := range n {
		var v strings.Builder
		for range r.next(12) {
			v.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789 -#:"[r.next(40)])
		}
		values[i] = strings.TrimSpace(v.String())
		if i > 0 {
			sep := separators[r.next(len(separators))]
			if r.next(4) == 0 {
				// The document on the separator line itself.
				fmt.Fprintf(&in, "--- {name: d%d, v: %q}\n", i, values[i])
				continue
			}
			in.WriteString(sep)
		}
		fmt.Fprintf(&in, "name: d%d\nv: %q\n", i, values[i])
		switch r.next(4) {
		case 1: // lines that look like markers, but indented
			in.WriteString("text: |\n  ---\n  ...\n  --- # not a separator\n")
		case 2:
			in.WriteString("# ---\n#...\n")
		case 3:
			in.WriteString("list:\n- ---x\n- '...'\n")
		}
	}
	switch r.next(4) {
	case 1:
		in.WriteString("...\n")
	case 2:
		in.WriteString("---\n")
	case 3:
		in.WriteString("--- # trailing\n# nothing\n")
	}
	stream := in.String()
	if r.next(2) == 1 {
		stream = strings.ReplaceAll(stream, "\n", "\r\n")
	}
	docs := splitDocuments([]byte(stream))
	if len(docs) != n {
		t.Fatalf("%d documents in, %d out:\n%q", n, len(docs), stream)
	}
	for i, d := range docs {
		var m struct {
			Name string `yaml:"name"`
			V    string `yaml:"v"`
		}
		if d.problem != "" {
			t.Fatalf("document %d: %s\n%q", i+1, d.problem, stream)
		}
		if err := yaml.Unmarshal(d.data, &m); err != nil {
			t.Fatalf("document %d does not parse: %v\n%q", i+1, err, d.data)
		}
		if m.Name != fmt.Sprintf("d%d", i) || m.V != values[i] {
			t.Fatalf("document %d is name %q v %q, want d%d %q\n%q", i+1, m.Name, m.V, i, values[i], stream)
		}
	}
}
