package tenants

import "time"

// Duration is a Go duration string such as "15s" or "250ms". It stays a
// string in the API so that validation, not decoding, reports a bad value
// with its field path; admission resolves it to a time.Duration once
// (resolved.go).
type Duration string

// Parse returns the duration or the parse error.
func (d Duration) Parse() (time.Duration, error) { return time.ParseDuration(string(d)) }

// IsSet reports whether a value was given.
func (d Duration) IsSet() bool { return d != "" }

// setDur defaults an unset duration to def and returns its value.
// Validation rejects a value that does not parse, so only unvalidated
// input can hold one; it counts as unset (def), never as zero, which
// Envoy would read as "no timeout".
func setDur(p *Duration, def time.Duration) time.Duration {
	if *p == "" {
		*p = Duration(def.String())
		return def
	}
	if v, err := p.Parse(); err == nil {
		return v
	}
	return def
}

// optDur is the value of a duration without a default: 0 when unset (or,
// in unvalidated input, unparsable).
func optDur(d Duration) time.Duration {
	if v, err := d.Parse(); err == nil {
		return v
	}
	return 0
}
