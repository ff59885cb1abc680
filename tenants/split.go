package tenants

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// rawDocument is one document of a manifest stream as splitDocuments
// found it, before decoding.
type rawDocument struct {
	data []byte // the document's lines, markers without content removed
	line int    // line of the stream where data starts (1-based)
	// problem, when set, is what is wrong with the markers around the
	// document; the document is reported, never dropped.
	problem string
}

// bom is U+FEFF in UTF-8. Editors on Windows start files with it, and
// `cat a.yaml b.yaml` then puts one at the start of a line in the middle.
var bom = []byte("\uFEFF")

// splitDocuments splits a YAML stream into its documents, the way YAML
// 1.2 (chapter 9, "Document Stream Productions") and the YAML parser
// behind sigs.k8s.io/yaml (go.yaml.in/yaml/v2) read one:
//
//   - a line starting with "---" followed by a space, a tab or the end of
//     the line starts a document. What follows on the line is a comment
//     ("--- # the tenant", dropped with the marker) or the start of the
//     document's content ("--- {kind: Tenant, …}", kept: the line stays
//     the first of the document, where the parser reads it);
//   - a line "..." (optionally followed by blanks and a comment) ends one;
//     anything else after it is reported as a problem of the document;
//   - lines break at LF, CRLF, CR, NEL, LS and PS — every break the parser
//     knows, so that no marker it sees is missed here;
//   - a BOM at the start of a line is dropped: at the start of the stream
//     or of a concatenated file it is an encoding mark, not content;
//   - directives (%YAML, %TAG) before a "---" stay with its document;
//   - documents holding nothing but blanks and comments are dropped.
//
// k8s.io/apimachinery's YAMLReader (pkg/util/yaml) agrees on every input
// it accepts without error, except "---#…", which it takes as a separator
// and YAML as content (FuzzSplitDocuments checks both against this).
func splitDocuments(data []byte) []rawDocument {
	var (
		out        []rawDocument
		cur        bytes.Buffer
		start      int  // line where cur starts
		content    bool // cur holds more than blanks and comments
		directives bool // cur holds directives that wait for their "---"
		problem    string
		prefix     = true // at the stream start or after "...": directives allowed
	)
	flush := func() {
		if content || problem != "" {
			out = append(out, rawDocument{data: bytes.Clone(cur.Bytes()), line: start, problem: problem})
		}
		cur.Reset()
		content, directives, problem = false, false, ""
	}
	lineNo := 0
	for rest := data; len(rest) > 0; {
		lineNo++
		var line, brk []byte
		line, brk, rest = nextLine(rest)
		for bytes.HasPrefix(line, bom) {
			line = line[len(bom):]
		}
		if cur.Len() == 0 {
			start = lineNo
		}
		switch {
		case isMarker(line, "---"):
			after := bytes.TrimLeft(line[3:], " \t")
			prefix = false
			if !content && directives {
				// "%YAML 1.1" then "---": one document.
				directives = false
				cur.Write(line)
				cur.Write(brk)
				content = len(after) > 0 && after[0] != '#'
				continue
			}
			flush()
			start = lineNo
			if len(after) > 0 && after[0] != '#' {
				cur.Write(line)
				cur.Write(brk)
				content = true
			}
		case isMarker(line, "..."):
			after := bytes.TrimLeft(line[3:], " \t")
			if len(after) > 0 && after[0] != '#' {
				problem = fmt.Sprintf("line %d: only a comment may follow the document end marker \"...\", got %q", lineNo, clipBytes(after))
			}
			flush()
			prefix = true
		default:
			if prefix && !content && len(line) > 0 && line[0] == '%' {
				directives = true
			} else if isContentLine(line) {
				content = true
				prefix = false
			}
			cur.Write(line)
			cur.Write(brk)
		}
	}
	flush()
	return out
}

// nextLine returns the first line of b, the break that ends it (empty at
// the end of the input) and the rest. The breaks are go.yaml.in/yaml/v2's
// is_break (yamlprivateh.go): CR, LF, CRLF, NEL, LS and PS.
func nextLine(b []byte) (line, brk, rest []byte) {
	for i := 0; i < len(b); i++ {
		n := 0
		switch {
		case b[i] == '\n':
			n = 1
		case b[i] == '\r':
			n = 1
			if i+1 < len(b) && b[i+1] == '\n' {
				n = 2
			}
		case b[i] == 0xC2 && i+1 < len(b) && b[i+1] == 0x85:
			n = 2
		case b[i] == 0xE2 && i+2 < len(b) && b[i+1] == 0x80 && (b[i+2] == 0xA8 || b[i+2] == 0xA9):
			n = 3
		}
		if n > 0 {
			return b[:i], b[i : i+n], b[i+n:]
		}
	}
	return b, nil, nil
}

// isMarker reports whether line is the document marker m ("---" or "...")
// at column 0, followed by a blank or the end of the line — YAML's
// c-directives-end / c-document-end, which go.yaml.in/yaml/v2 recognises
// the same way (scannerc.go, yaml_parser_fetch_next_token:
// "Is it the document start indicator?").
func isMarker(line []byte, m string) bool {
	if !bytes.HasPrefix(line, []byte(m)) {
		return false
	}
	return len(line) == 3 || line[3] == ' ' || line[3] == '\t'
}

// isContentLine reports whether a line holds more than blanks and a
// comment.
func isContentLine(line []byte) bool {
	t := bytes.TrimLeft(line, " \t")
	return len(t) > 0 && t[0] != '#'
}

// hasContentLine reports whether doc has a line with more than blanks
// and a comment.
func hasContentLine(doc []byte) bool {
	for rest := doc; len(rest) > 0; {
		var line []byte
		line, _, rest = nextLine(rest)
		if isContentLine(line) {
			return true
		}
	}
	return false
}

// clipBytes shortens b for a message.
func clipBytes(b []byte) string { return clip(string(b)) }

// clip shortens s for a message, on a rune boundary.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
