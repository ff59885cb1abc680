package validate

import (
	"fmt"
	"regexp/syntax"
	"sync"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

func init() { register(regexMatcher) }

// MaxRegexProgramSize is Envoy's default re2.max_program_size.error_level:
// Regex::CompiledGoogleReMatcher (source/common/common/regex.cc) refuses a
// regex whose RE2 program is larger ("RE2 program size of N > max program
// size of 100 set for the error level threshold").
const MaxRegexProgramSize = 100

// regexMatcher compiles every safe_regex as RE2 would. Go's regexp/syntax
// is a port of RE2's parser and compiler, so what it refuses RE2 refuses,
// and its instruction count follows RE2's program size. They are not
// identical: RE2 compiles to UTF-8 byte ranges, so a class reaching past
// ASCII (a negated class, ".") costs more there; each such class is
// charged utf8Cost extra instructions, an upper bound of what RE2 spends
// to encode runes U+0080..U+10FFFF as byte ranges.
func regexMatcher(r *matcherv3.RegexMatcher) []error {
	n, err := cachedProgramSize(r.GetRegex())
	if err != nil {
		return []error{fmt.Errorf("regex %q: %w", r.GetRegex(), err)}
	}
	if n > MaxRegexProgramSize {
		return []error{fmt.Errorf("regex %q: program size %d is over Envoy's limit of %d", r.GetRegex(), n, MaxRegexProgramSize)}
	}
	return nil
}

// RegexProgramSize parses and compiles re with RE2 syntax and returns its
// program size.
func RegexProgramSize(re string) (int, error) {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return 0, err
	}
	simple := parsed.Simplify()
	prog, err := syntax.Compile(simple)
	if err != nil {
		return 0, err
	}
	return len(prog.Inst) + utf8Cost*nonASCIIClasses(simple), nil
}

// utf8Cost: the byte-range instructions of one class spanning the
// multi-byte UTF-8 space (lead byte ranges for 2-, 3- and 4-byte forms and
// their continuation bytes).
const utf8Cost = 12

func nonASCIIClasses(re *syntax.Regexp) int {
	n := 0
	switch re.Op {
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		n++
	case syntax.OpCharClass:
		for i := 1; i < len(re.Rune); i += 2 {
			if re.Rune[i] > 0x7f {
				n++
				break
			}
		}
	}
	for _, s := range re.Sub {
		n += nonASCIIClasses(s)
	}
	return n
}

// cachedProgramSize memoizes RegexProgramSize: the same few regexes (a
// route's method list, the internal header pattern) recur in every
// tenant. Bounded, so hostile input cannot grow it without limit.
func cachedProgramSize(re string) (int, error) {
	regexCache.Lock()
	c, ok := regexCache.m[re]
	regexCache.Unlock()
	if ok {
		return c.n, c.err
	}
	n, err := RegexProgramSize(re)
	regexCache.Lock()
	if len(regexCache.m) >= maxRegexCache {
		clear(regexCache.m)
	}
	regexCache.m[re] = regexSize{n, err}
	regexCache.Unlock()
	return n, err
}

const maxRegexCache = 4096

type regexSize struct {
	n   int
	err error
}

var regexCache = struct {
	sync.Mutex
	m map[string]regexSize
}{m: map[string]regexSize{}}
