package tenants

import "time"

// Duration is a Go duration string such as "15s" or "250ms". It stays a
// string in the API so that validation, not decoding, reports a bad value
// with its field path.
type Duration string

// Parse returns the duration or the parse error.
func (d Duration) Parse() (time.Duration, error) { return time.ParseDuration(string(d)) }

// IsSet reports whether a value was given.
func (d Duration) IsSet() bool { return d != "" }

// Get returns the duration of a validated value, or def when unset.
// Callers only see validated objects, so a parse failure cannot happen
// there; it yields def rather than a surprising zero.
func (d Duration) Get(def time.Duration) time.Duration {
	if d == "" {
		return def
	}
	v, err := d.Parse()
	if err != nil {
		return def
	}
	return v
}
