package store

import "testing"

func TestUnifiedDiff(t *testing.T) {
	a := []string{"a\n", "b\n", "c\n", "d\n", "e\n", "f\n", "g\n", "h\n", "i\n", "j\n"}
	b := []string{"a\n", "B\n", "c\n", "d\n", "e\n", "f\n", "g\n", "h\n", "i\n", "j\n", "k\n"}
	got := unifiedDiff("x (stored)", "x (applied)", a, b)
	want := `--- x (stored)
+++ x (applied)
@@ -1,5 +1,5 @@
 a
-b
+B
 c
 d
 e
@@ -8,3 +8,4 @@
 h
 i
 j
+k
`
	if got != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", got, want)
	}
	if got := unifiedDiff("x", "y", nil, []string{"new\n"}); got != "--- x\n+++ y\n@@ -0,0 +1,1 @@\n+new\n" {
		t.Fatalf("creation diff:\n%s", got)
	}
}
