package adsclient

import "testing"

// TestInNamespace follows watch_map.cc: a namespace watch on "edge-routes"
// keeps the name itself and names whose part before the last '/' is it.
func TestInNamespace(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{"edge-routes/tenant-a", true},
		{"edge-routes", true},
		{"edge-routes/a/b", false}, // namespace edge-routes/a
		{"other/tenant-a", false},
		{"edge-routes-x/tenant-a", false},
		{"tenant-a", false},
	} {
		if got := InNamespace(c.name, "edge-routes"); got != c.want {
			t.Errorf("InNamespace(%q, edge-routes) = %v, want %v", c.name, got, c.want)
		}
	}
}
