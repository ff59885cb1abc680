package keyfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "k.pem")
	k1, created, err := LoadOrCreate(path, "test key")
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: created=%v err=%v", created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi, err)
	}
	k2, created, err := LoadOrCreate(path, "test key")
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("second LoadOrCreate: created=%v err=%v same=%v", created, err, k1.Equal(k2))
	}
}

func TestLoadRefusesWhatIsNotAnEd25519Key(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(path, []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, "audit key"); err == nil || !strings.Contains(err.Error(), `audit key `+path+`: no PEM "PRIVATE KEY" block`) {
		t.Fatalf("Load = %v", err)
	}
	if _, _, err := LoadOrCreate(path, "audit key"); err == nil {
		t.Fatal("LoadOrCreate replaced an unreadable key")
	}
}
