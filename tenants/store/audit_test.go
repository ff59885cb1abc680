package store

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

func newTestAuditKey(t testing.TB) *AuditKey {
	t.Helper()
	k, err := GenerateAuditKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// storeOn returns another store over cli with the test prefix.
func storeOn(cli *clientv3.Client, audit AuditOptions) *Store {
	return New(cli, Options{Prefix: testPrefix, Logger: slog.New(slog.NewTextHandler(testLogOut, nil)), Audit: audit})
}

// auditFixture makes four audit records.
func auditFixture(t *testing.T) (*Store, *clientv3.Client, func() []AuditRecord) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, tenantYAML("tenant-a", "A"))
	mustApply(t, s, tenantYAML("tenant-b", "B"))
	mustApply(t, s, tenantYAML("tenant-a", "A2"))
	if err := s.Delete(ctx, tenants.KindTenant, "tenant-b", "tester"); err != nil {
		t.Fatal(err)
	}
	if err := s.AuditVerify(ctx); err != nil {
		t.Fatalf("untouched chain: %v", err)
	}
	list := func() []AuditRecord {
		recs, err := s.AuditList(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	if n := len(list()); n != 4 {
		t.Fatalf("%d records, want 4", n)
	}
	return s, cli, list
}

func putRecord(t *testing.T, cli *clientv3.Client, r AuditRecord) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctxT(t), testPrefix+auditDir+r.ID, string(b)); err != nil {
		t.Fatal(err)
	}
}

func putHead(t *testing.T, cli *clientv3.Client, r AuditRecord) {
	t.Helper()
	b, err := json.Marshal(auditHead{ID: r.ID, Seq: r.Seq, Hash: r.Hash})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctxT(t), testPrefix+auditHeadKey, string(b)); err != nil {
		t.Fatal(err)
	}
}

// rewriteFrom edits record i as an etcd writer without the audit key
// would: edit it, then recompute the hash of it and of every record after
// it and move audit-head, so the chain of hashes is whole again. With
// strip the records lose their key id and signature (pretending to be
// written before signing); without, they keep their old signatures.
func rewriteFrom(t *testing.T, cli *clientv3.Client, recs []AuditRecord, i int, edit func(*AuditRecord), strip bool) {
	t.Helper()
	edit(&recs[i])
	for j := i; j < len(recs); j++ {
		if j > 0 {
			recs[j].PrevHash = recs[j-1].Hash
		}
		if strip {
			recs[j].KeyID, recs[j].Sig = "", ""
		}
		h, err := recs[j].computeHash()
		if err != nil {
			t.Fatal(err)
		}
		recs[j].Hash = h
		putRecord(t, cli, recs[j])
	}
	putHead(t, cli, recs[len(recs)-1])
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("verify passed, want an error with %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q lacks %q", err, p)
		}
	}
}

func TestAuditRecordsAreSigned(t *testing.T) {
	s, _, list := auditFixture(t)
	for _, r := range list() {
		if r.KeyID != s.audit.Key.ID() || r.Sig == "" {
			t.Fatalf("record %s: keyId %q sig %q, want signed by %s", r.ID, r.KeyID, r.Sig, s.audit.Key.ID())
		}
		if r.Label != "tester" || r.Actor != "" {
			t.Fatalf("record %s: actor %q label %q; an unauthenticated client has no actor, --actor is the label", r.ID, r.Actor, r.Label)
		}
	}
}

func TestAuditVerifyDetectsEditedRecord(t *testing.T) {
	s, cli, list := auditFixture(t)
	rec := list()[1]
	rec.Label = "somebody-innocent"
	putRecord(t, cli, rec)
	wantErr(t, s.AuditVerify(ctxT(t)), rec.ID, "edited")
}

// The first tampering: rewrite a record and rehash the rest. The
// hash chain is whole again; only the signatures, made with a key that is
// not in etcd, give it away.
func TestAuditVerifyDetectsRewrittenAndRehashedChain(t *testing.T) {
	for _, strip := range []bool{false, true} {
		name := map[bool]string{false: "old signatures kept", true: "signatures removed"}[strip]
		t.Run(name, func(t *testing.T) {
			s, cli, list := auditFixture(t)
			recs := list()
			rewriteFrom(t, cli, recs, 1, func(r *AuditRecord) { r.Label = "somebody-innocent" }, strip)
			err := s.AuditVerify(ctxT(t))
			if strip {
				wantErr(t, err, recs[1].ID, "not signed")
			} else {
				wantErr(t, err, recs[1].ID, "signature does not verify")
			}
		})
	}
	t.Run("every record stripped and rehashed", func(t *testing.T) {
		s, cli, list := auditFixture(t)
		rewriteFrom(t, cli, list(), 0, func(r *AuditRecord) { r.Label = "x" }, true)
		wantErr(t, s.AuditVerify(ctxT(t)), "none of the 4 audit records is signed")
	})
}

func TestAuditVerifyDetectsForeignKey(t *testing.T) {
	// A writer with a key of its own (not the replicas' key) signs
	// validly, but with a key the verifier does not accept.
	s, cli, list := auditFixture(t)
	recs := list()
	mallory := newTestAuditKey(t)
	recs[2].Label = "mallory"
	recs[2].KeyID = mallory.ID()
	h, err := recs[2].computeHash()
	if err != nil {
		t.Fatal(err)
	}
	recs[2].Hash = h
	recs[2].Sig = signForTest(mallory, h)
	putRecord(t, cli, recs[2])
	wantErr(t, s.AuditVerify(ctxT(t)), recs[2].ID, mallory.ID(), "not among the verifying keys")
}

func TestAuditVerifyDetectsDeletedRecords(t *testing.T) {
	s, cli, list := auditFixture(t)
	recs := list()
	if _, err := cli.Delete(ctxT(t), testPrefix+auditDir+recs[1].ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.AuditVerify(ctxT(t)), recs[2].ID, "deleted")
}

func TestAuditVerifyDetectsDeletedFirstRecords(t *testing.T) {
	s, cli, list := auditFixture(t)
	recs := list()
	for _, r := range recs[:2] {
		if _, err := cli.Delete(ctxT(t), testPrefix+auditDir+r.ID); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, s.AuditVerify(ctxT(t)), recs[2].ID, "seq 1", "deleted")
}

func TestAuditVerifyDetectsDeletedLastRecord(t *testing.T) {
	// Without moving audit-head, deleting the last record shows.
	s, cli, list := auditFixture(t)
	last := list()[3]
	if _, err := cli.Delete(ctxT(t), testPrefix+auditDir+last.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.AuditVerify(ctxT(t)), last.ID, "deleted")
}

// The third tampering: the whole audit/ prefix and audit-head
// deleted in a store that still holds objects.
func TestAuditVerifyDetectsDeletedTrail(t *testing.T) {
	s, cli, _ := auditFixture(t)
	ctx := ctxT(t)
	if _, err := cli.Delete(ctx, testPrefix+auditDir, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, testPrefix+auditHeadKey); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.AuditVerify(ctx), "trail is empty but the store holds 1 audited objects")
	// An empty store with an empty trail is fine.
	if _, err := cli.Delete(ctx, testPrefix, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	if err := s.AuditVerify(ctx); err != nil {
		t.Fatalf("empty store: %v", err)
	}
}

func TestAuditWriteWithoutKeyWritesNothing(t *testing.T) {
	s, cli := newTestStore(t)
	mustApply(t, s, tenantYAML("tenant-a", "A"))
	keyless := storeOn(cli, AuditOptions{})
	_, err := keyless.Apply(ctxT(t), decode(t, "b.yaml", tenantYAML("tenant-b", "B")), ApplyOptions{Actor: "x"})
	if !errors.Is(err, ErrNoAuditKey) {
		t.Fatalf("apply without a key: %v, want ErrNoAuditKey", err)
	}
	if n := keyCount(t, cli, tenantsDir); n != 1 {
		t.Fatalf("%d tenants stored, want 1: the refused apply wrote", n)
	}
	// What needs no record still works: an unchanged apply, a dry run.
	if _, err := keyless.Apply(ctxT(t), decode(t, "a.yaml", tenantYAML("tenant-a", "A")), ApplyOptions{}); err != nil {
		t.Fatalf("unchanged apply without a key: %v", err)
	}
}

// Records written before records were signed are accepted as a prefix:
// the first signed record's prevHash binds them. An unsigned record after
// a signed one is refused, even when a signed one follows it (a writer
// chaining onto a forged head).
func TestAuditVerifyLegacyUnsignedPrefix(t *testing.T) {
	s, cli, list := auditFixture(t)
	recs := list()
	// Pretend the first two were written by the previous version.
	rewriteFrom(t, cli, recs[:2], 0, func(*AuditRecord) {}, true)
	for j := 2; j < 4; j++ {
		recs[j].PrevHash = recs[j-1].Hash
		resign(t, s.audit.Key, &recs[j])
		putRecord(t, cli, recs[j])
	}
	putHead(t, cli, recs[3])
	res, err := s.AuditVerifyWith(ctxT(t), VerifyOptions{})
	if err != nil || res.Unsigned != 2 || res.Records != 4 {
		t.Fatalf("legacy prefix: %+v %v, want 2 unsigned of 4", res, err)
	}

	// A forged unsigned record appended at the head, then a legitimate
	// change chained onto it.
	forged := AuditRecord{ID: "000000000005-x", Seq: 5, Action: ActionDelete, Kind: tenants.KindTenant, Name: "tenant-a", PrevHash: recs[3].Hash}
	h, err := forged.computeHash()
	if err != nil {
		t.Fatal(err)
	}
	forged.Hash = h
	putRecord(t, cli, forged)
	putHead(t, cli, forged)
	mustApply(t, s, tenantYAML("tenant-c", "C"))
	wantErr(t, s.AuditVerify(ctxT(t)), forged.ID, "not signed, but records before it are")
}

func resign(t *testing.T, k *AuditKey, r *AuditRecord) {
	t.Helper()
	r.KeyID = k.ID()
	h, err := r.computeHash()
	if err != nil {
		t.Fatal(err)
	}
	r.Hash = h
	r.Sig = signForTest(k, h)
}

func signForTest(k *AuditKey, hash string) string {
	return encodeSig(k.sign(recordSigningInput(hash)))
}

// Rotation: records carry their key id; a verifier with both keys accepts
// the trail, one with the new key only names the old.
func TestAuditKeyRotation(t *testing.T) {
	s, cli, _ := auditFixture(t)
	old := s.audit.Key
	next := newTestAuditKey(t)
	rotated := storeOn(cli, AuditOptions{Key: next})
	mustApply(t, rotated, tenantYAML("tenant-c", "C"))
	wantErr(t, rotated.AuditVerify(ctxT(t)), old.ID(), "not among the verifying keys")
	ring := AuditKeyring{}
	ring.Add(old.Public())
	withOld := storeOn(cli, AuditOptions{Key: next, Keyring: ring})
	res, err := withOld.AuditVerifyWith(ctxT(t), VerifyOptions{})
	if err != nil {
		t.Fatalf("verify with both keys: %v", err)
	}
	if len(res.KeyIDs) != 2 {
		t.Fatalf("keys %v, want both", res.KeyIDs)
	}
}
