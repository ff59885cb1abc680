package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/internal/etcdtest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClockStore(t *testing.T) (*Store, *clientv3.Client, *clock) {
	t.Helper()
	cli, _ := etcdtest.Start(t)
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := New(cli, Options{Prefix: testPrefix, Logger: slog.New(slog.NewTextHandler(testLogOut, nil)), Now: c.now, Audit: AuditOptions{Key: newTestAuditKey(t)}})
	return s, cli, c
}

func withRetention(yaml, retention string) string {
	return yaml + "  audit: {retention: " + retention + "}\n"
}

func TestAuditCompactRetention(t *testing.T) {
	s, cli, clk := newClockStore(t)
	ctx := ctxT(t)
	mustApply(t, s, withRetention(tenantYAML("tenant-a", "A"), "48h"))               // seq 1
	mustApply(t, s, tenantYAML("tenant-b", "B"))                                     // seq 2: forever
	if _, _, err := s.CreateAPIKey(ctx, "tenant-a", "ci", 0, "tester"); err != nil { // seq 3
		t.Fatal(err)
	}
	cp := lastCheckpoint(t, exportOnce(t, s, nil))
	before, err := s.AuditList(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	clk.add(72 * time.Hour)
	mustApply(t, s, withRetention(tenantYAML("tenant-a", "A2"), "48h")) // seq 4: recent

	dry, err := s.AuditCompact(ctx, "retention", true)
	if err != nil || len(dry) != 1 || dry[0].Count != 2 {
		t.Fatalf("dry run: %+v %v, want one summary of 2 records", dry, err)
	}
	if n := keyCount(t, cli, auditDir); n != 4 {
		t.Fatalf("dry run removed records: %d left", n)
	}
	done, err := s.AuditCompact(ctx, "retention", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 || done[0].Tenant != "tenant-a" || done[0].Count != 2 || done[0].FirstSeq != 1 || done[0].LastSeq != 3 {
		t.Fatalf("compaction %+v, want tenant-a's seq 1 and 3", done)
	}
	recs, err := s.AuditList(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%d:%s/%s", r.Seq, r.Action, r.Tenant))
	}
	if want := "2:create/tenant-b 4:configure/tenant-a 5:compact/tenant-a"; strings.Join(got, " ") != want {
		t.Fatalf("trail after compaction: %s, want %s", strings.Join(got, " "), want)
	}
	sum := recs[2].Summary
	if sum == nil || sum.Count != 2 || sum.Retention != "48h0m0s" || recs[2].Sig == "" || recs[2].Label != "retention" {
		t.Fatalf("summary record %+v", recs[2])
	}
	// The digest covers the removed records as they were stored.
	h := sha256.New()
	for _, r := range []AuditRecord{before[0], before[2]} {
		b, err := json.Marshal(r) // the stored form: commit writes json.Marshal of the record
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	if d := hex.EncodeToString(h.Sum(nil)); d != sum.Digest {
		t.Fatalf("summary digest %s, want %s", sum.Digest, d)
	}
	res, err := s.AuditVerifyWith(ctx, VerifyOptions{Checkpoint: cp})
	if err != nil {
		t.Fatalf("verify after compaction, against a checkpoint of a removed record: %v", err)
	}
	if res.Records != 3 || res.Compacted != 2 || res.HeadSeq != 5 {
		t.Fatalf("verification %+v", res)
	}
	if again, err := s.AuditCompact(ctx, "retention", false); err != nil || len(again) != 0 {
		t.Fatalf("second compaction: %+v %v, want nothing to do", again, err)
	}
	// An etcd writer cannot rewrite a summary either.
	tampered := recs[2]
	tampered.Summary.Count = 1
	if tampered.Hash, err = tampered.computeHash(); err != nil {
		t.Fatal(err)
	}
	putRecord(t, cli, tampered)
	putHead(t, cli, tampered)
	wantErr(t, s.AuditVerify(ctx), tampered.ID, "signature does not verify")
}

func TestAuditCompactBatchesAndRefusesTamperedTrail(t *testing.T) {
	s, cli, clk := newClockStore(t)
	ctx := ctxT(t)
	mustApply(t, s, withRetention(tenantYAML("tenant-a", "A"), "1h"))
	const keys = compactBatch + 20
	for i := range keys {
		if _, _, err := s.CreateAPIKey(ctx, "tenant-a", fmt.Sprint(i), 0, "tester"); err != nil {
			t.Fatal(err)
		}
	}
	clk.add(2 * time.Hour)
	done, err := s.AuditCompact(ctx, "retention", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 2 || done[0].Count != compactBatch || done[1].Count != keys+1-compactBatch {
		t.Fatalf("compactions %+v, want batches of %d and %d", done, compactBatch, keys+1-compactBatch)
	}
	if n := keyCount(t, cli, auditDir); n != 2 {
		t.Fatalf("%d records left, want the 2 summaries", n)
	}
	if err := s.AuditVerify(ctx); err != nil {
		t.Fatalf("verify after two batches: %v", err)
	}

	// A trail that does not verify is not compacted: that would vouch
	// for an edited record in a signed summary.
	mustApply(t, s, withRetention(tenantYAML("tenant-a", "A2"), "1h"))
	recs, err := s.AuditList(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1]
	last.Label = "mallory"
	putRecord(t, cli, last)
	clk.add(2 * time.Hour)
	if _, err := s.AuditCompact(ctx, "retention", false); err == nil || !strings.Contains(err.Error(), "nothing compacted") {
		t.Fatalf("compaction of a tampered trail: %v", err)
	}
	if n := keyCount(t, cli, auditDir); n != 3 {
		t.Fatalf("%d records, want 3: nothing may be compacted", n)
	}
}

// Two replicas compacting at once: the one that plans from a trail the
// other has compacted meanwhile must not land, or two summaries would
// account for the same records.
func TestAuditCompactConcurrentReplicas(t *testing.T) {
	a, cli, clk := newClockStore(t)
	ctx := ctxT(t)
	mustApply(t, a, withRetention(tenantYAML("tenant-a", "A"), "1h"))
	mustApply(t, a, withRetention(tenantYAML("tenant-a", "A2"), "1h"))
	clk.add(2 * time.Hour)
	b := New(cli, Options{Prefix: testPrefix, Logger: a.log, Now: clk.now, Audit: a.audit})
	plan, err := b.compactionPlan(ctx, newChainVerifier(b.audit.keyring()))
	if err != nil || len(plan) != 1 {
		t.Fatalf("replica b's plan: %+v %v", plan, err)
	}
	if done, err := a.AuditCompact(ctx, "retention", false); err != nil || len(done) != 1 {
		t.Fatalf("replica a: %+v %v", done, err)
	}
	_, err = b.commit(ctx, "retention", func(context.Context) (*change, error) { return plan[0].change(), nil })
	if !errors.Is(err, errContention) {
		t.Fatalf("replica b committed a plan made before a's compaction: %v", err)
	}
	if err := a.AuditVerify(ctx); err != nil {
		t.Fatal(err)
	}
	if n := keyCount(t, cli, auditDir); n != 1 {
		t.Fatalf("%d records, want a's summary only", n)
	}
}
