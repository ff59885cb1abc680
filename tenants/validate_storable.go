package tenants

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"
)

// checkStorable walks every string of an object and reports those that
// would not survive the stored form. encoding/json writes DEL, the C1
// controls and the noncharacters U+FFFE/U+FFFF unescaped, and the YAML
// parser that reads the stored form back refuses them — so such a value
// would validate in the CLI and then fail to decode in every control plane
// replica. Found by FuzzDecode.
func checkStorable(e *errs, p Path, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			checkStorable(e, p, v.Elem())
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fp := p
			if name != "" && name != "-" {
				fp = p.Child(name)
			} else if !f.Anonymous {
				fp = p.Child(f.Name)
			}
			checkStorable(e, fp, v.Field(i))
		}
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			checkStorableString(e, p, string(v.Bytes()))
			return
		}
		for i := 0; i < v.Len(); i++ {
			checkStorable(e, p.Index(i), v.Index(i))
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			kp := p.Key(k.String())
			checkStorableString(e, kp, k.String())
			checkStorable(e, kp, v.MapIndex(k))
		}
	case reflect.String:
		checkStorableString(e, p, v.String())
	}
}

func checkStorableString(e *errs, p Path, s string) {
	if isPlainASCII(s) {
		return // the common case, without decoding runes
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			e.add(p, "is not valid UTF-8")
			return
		case r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0xfffe || r == 0xffff:
			e.add(p, "contains %s, a control character or noncharacter that cannot be stored", fmt.Sprintf("U+%04X", r))
			return
		}
	}
}

// isPlainASCII reports whether s holds only ASCII below DEL.
func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x7f {
			return false
		}
	}
	return true
}
