package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/internal/etcdtest"
)

// exportOnce runs a one-shot export and returns its lines.
func exportOnce(t *testing.T, s *Store, resume *Checkpoint) []ExportLine {
	t.Helper()
	var lines []ExportLine
	err := s.AuditExport(ctxT(t), ExportOptions{Resume: resume}, func(l ExportLine) error {
		lines = append(lines, l)
		return nil
	})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return lines
}

func lastCheckpoint(t *testing.T, lines []ExportLine) *Checkpoint {
	t.Helper()
	var buf bytes.Buffer
	for _, l := range lines {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(append(b, '\n'))
	}
	cp, err := ReadLastCheckpoint(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// The second tampering: drop the last record and move audit-head
// back. The chain that is left is whole and signed; only a checkpoint
// taken outside etcd shows that it is shorter than it was.
func TestAuditCheckpointDetectsDeletedTail(t *testing.T) {
	s, cli, list := auditFixture(t)
	ctx := ctxT(t)
	lines := exportOnce(t, s, nil)
	if len(lines) != 5 || lines[4].Checkpoint == nil {
		t.Fatalf("export: %d lines, want 4 records and a checkpoint", len(lines))
	}
	cp := lastCheckpoint(t, lines)
	if cp.Seq != 4 {
		t.Fatalf("checkpoint seq %d, want 4", cp.Seq)
	}
	if _, err := s.AuditVerifyWith(ctx, VerifyOptions{Checkpoint: cp}); err != nil {
		t.Fatalf("untouched trail against its checkpoint: %v", err)
	}
	recs := list()
	if _, err := cli.Delete(ctx, testPrefix+auditDir+recs[3].ID); err != nil {
		t.Fatal(err)
	}
	putHead(t, cli, recs[2])
	if err := s.AuditVerify(ctx); err != nil {
		t.Fatalf("without a checkpoint the shortened trail still verifies (that is what checkpoints are for): %v", err)
	}
	_, err := s.AuditVerifyWith(ctx, VerifyOptions{Checkpoint: cp})
	wantErr(t, err, "ends at seq 3", "seq 4", "deleted")

	// Writers carry on from the moved head: the trail is as long again,
	// but its record at seq 4 is another one.
	mustApply(t, s, tenantYAML("tenant-c", "C"))
	_, err = s.AuditVerifyWith(ctx, VerifyOptions{Checkpoint: cp})
	wantErr(t, err, "record at seq 4 has hash", "checkpoint")
}

func TestAuditCheckpointDetectsDeletedTrail(t *testing.T) {
	s, cli, _ := auditFixture(t)
	ctx := ctxT(t)
	cp := lastCheckpoint(t, exportOnce(t, s, nil))
	// Everything deleted, objects too: no object count gives it away.
	if _, err := cli.Delete(ctx, testPrefix, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	if err := s.AuditVerify(ctx); err != nil {
		t.Fatalf("an empty store verifies without a checkpoint: %v", err)
	}
	_, err := s.AuditVerifyWith(ctx, VerifyOptions{Checkpoint: cp})
	wantErr(t, err, "ends at seq 0", "seq 4")
}

func TestAuditCheckpointSignatureAndPrefix(t *testing.T) {
	s, cli, _ := auditFixture(t)
	ctx := ctxT(t)
	cp := lastCheckpoint(t, exportOnce(t, s, nil))
	edited := *cp
	edited.Seq = 2
	_, err := s.AuditVerifyWith(ctx, VerifyOptions{Checkpoint: &edited})
	wantErr(t, err, "signature does not verify")
	other := New(cli, Options{Prefix: "/other/", Audit: s.audit})
	_, err = other.AuditVerifyWith(ctx, VerifyOptions{Checkpoint: cp})
	wantErr(t, err, "prefix")
	if _, err := ReadLastCheckpoint(strings.NewReader(`{"record":{}}` + "\n")); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("stream without checkpoints: %v", err)
	}
	if _, err := ReadLastCheckpoint(strings.NewReader("{not json\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("damaged stream: %v", err)
	}
}

// syncLines collects export lines from a following export.
type syncLines struct {
	mu    sync.Mutex
	lines []ExportLine
}

func (l *syncLines) add(x ExportLine) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, x)
	return nil
}

// waitCheckpoint waits until the last line is a checkpoint of seq.
func (l *syncLines) waitCheckpoint(t *testing.T, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		n := len(l.lines)
		ok := n > 0 && l.lines[n-1].Checkpoint != nil && l.lines[n-1].Checkpoint.Seq == seq
		l.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no checkpoint of seq %d exported", seq)
}

func TestAuditExportFollow(t *testing.T) {
	s, cli, list := auditFixture(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var got syncLines
	done := make(chan error, 1)
	go func() {
		done <- s.AuditExport(ctx, ExportOptions{Follow: true, Interval: 50 * time.Millisecond}, got.add)
	}()
	got.waitCheckpoint(t, 4)
	mustApply(t, s, tenantYAML("tenant-c", "C"))
	got.waitCheckpoint(t, 5)
	got.mu.Lock()
	var seqs []uint64
	for _, l := range got.lines {
		if l.Record != nil {
			seqs = append(seqs, l.Record.Seq)
		}
	}
	got.mu.Unlock()
	if len(seqs) != 5 || seqs[4] != 5 {
		t.Fatalf("exported records %v, want seq 1..5 once each", seqs)
	}

	// The alarm: the tail deleted and the head moved back while the
	// export follows.
	recs := list()
	if _, err := cli.Delete(ctxT(t), testPrefix+auditDir+recs[4].ID); err != nil {
		t.Fatal(err)
	}
	putHead(t, cli, recs[3])
	select {
	case err := <-done:
		wantErr(t, err, recs[4].ID, "already exported, was deleted")
	case <-time.After(20 * time.Second):
		t.Fatal("export kept following a trail whose exported tail was deleted")
	}
}

func TestAuditExportResume(t *testing.T) {
	s, cli, list := auditFixture(t)
	cp := lastCheckpoint(t, exportOnce(t, s, nil))
	mustApply(t, s, tenantYAML("tenant-c", "C"))
	lines := exportOnce(t, s, cp)
	if len(lines) != 2 || lines[0].Record == nil || lines[0].Record.Seq != 5 {
		t.Fatalf("resumed export: %+v, want record 5 and a checkpoint", lines)
	}
	recs := list()
	if _, err := cli.Delete(ctxT(t), testPrefix+auditDir+recs[4].ID); err != nil {
		t.Fatal(err)
	}
	putHead(t, cli, recs[3])
	err := s.AuditExport(ctxT(t), ExportOptions{Resume: lastCheckpoint(t, lines)}, func(ExportLine) error { return nil })
	wantErr(t, err, "no longer matches the last checkpoint", "deleted")
}

// An etcd outage is not an alarm: a following export waits it out.
func TestAuditExportFollowSurvivesEtcdRestart(t *testing.T) {
	s, _, e := newTestStoreEtcd(t)
	mustApply(t, s, tenantYAML("tenant-a", "A"))
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var got syncLines
	done := make(chan error, 1)
	go func() {
		done <- s.AuditExport(ctx, ExportOptions{Follow: true, Interval: 50 * time.Millisecond}, got.add)
	}()
	got.waitCheckpoint(t, 1)
	etcdtest.Restart(t, e, 2*time.Second) // longer than a poll's bound
	select {
	case err := <-done:
		t.Fatalf("export stopped while etcd restarted: %v", err)
	default:
	}
	mustApply(t, s, tenantYAML("tenant-b", "B"))
	got.waitCheckpoint(t, 2)
}
