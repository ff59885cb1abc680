package store

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// auditFixture makes four audit records and returns their keys.
func auditFixture(t *testing.T) (*Store, func(i int) (string, AuditRecord), func(key string, r AuditRecord)) {
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
	get := func(i int) (string, AuditRecord) {
		recs, err := s.AuditList(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 4 {
			t.Fatalf("%d records, want 4", len(recs))
		}
		return testPrefix + auditDir + recs[i].ID, recs[i]
	}
	put := func(key string, r AuditRecord) {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, key, string(b)); err != nil {
			t.Fatal(err)
		}
	}
	return s, get, put
}

func TestAuditVerifyDetectsEditedRecord(t *testing.T) {
	s, get, put := auditFixture(t)
	key, rec := get(1)
	rec.Actor = "somebody-innocent"
	put(key, rec)
	err := s.AuditVerify(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), rec.ID) || !strings.Contains(err.Error(), "edited") {
		t.Fatalf("verify after edit: %v (want it to name %s)", err, rec.ID)
	}
}

func TestAuditVerifyDetectsRehashedRecord(t *testing.T) {
	// An editor who also recomputes the record's own hash still breaks
	// the link to the next record.
	s, get, put := auditFixture(t)
	key, rec := get(1)
	rec.Actor = "somebody-innocent"
	h, err := rec.computeHash()
	if err != nil {
		t.Fatal(err)
	}
	rec.Hash = h
	put(key, rec)
	_, next := get(2)
	err = s.AuditVerify(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), next.ID) {
		t.Fatalf("verify after edit+rehash: %v (want it to name %s)", err, next.ID)
	}
}

func TestAuditVerifyDetectsDeletedRecords(t *testing.T) {
	s, get, _ := auditFixture(t)
	ctx := ctxT(t)
	key, _ := get(1)
	_, next := get(2)
	if _, err := s.cli.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	err := s.AuditVerify(ctx)
	if err == nil || !strings.Contains(err.Error(), next.ID) || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("verify after deleting a middle record: %v", err)
	}
}

func TestAuditVerifyDetectsDeletedLastRecord(t *testing.T) {
	s, get, _ := auditFixture(t)
	ctx := ctxT(t)
	key, last := get(3)
	if _, err := s.cli.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	err := s.AuditVerify(ctx)
	if err == nil || !strings.Contains(err.Error(), last.ID) {
		t.Fatalf("verify after deleting the last record: %v", err)
	}
}
