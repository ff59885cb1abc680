package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ReportOptions select the records of an AuditReport.
type ReportOptions struct {
	// Tenant whose records (its manifest's and its API keys', and the
	// retention summaries of them) are reported.
	Tenant string
	// Since and Until bound the records' time: Since ≤ time < Until; zero
	// means unbounded.
	Since, Until time.Time
	// Keyring as in VerifyOptions.
	Keyring AuditKeyring
}

// AuditReport is every change to one tenant in a time range, from a trail
// that verified.
type AuditReport struct {
	Tenant string     `json:"tenant"`
	Since  *time.Time `json:"since,omitempty"`
	Until  *time.Time `json:"until,omitempty"`
	// Verification is the check of the whole trail the report was cut from.
	Verification *AuditVerification `json:"verification"`
	Records      []AuditRecord      `json:"records"`
}

// AuditReport verifies the whole trail and returns the records about
// opts.Tenant in the time range. A trail that does not verify gives no
// report: the error says why.
func (s *Store) AuditReport(ctx context.Context, opts ReportOptions) (*AuditReport, error) {
	if err := checkName(opts.Tenant); err != nil {
		return nil, fmt.Errorf("tenant: %w", err)
	}
	if !opts.Since.IsZero() && !opts.Until.IsZero() && !opts.Since.Before(opts.Until) {
		return nil, fmt.Errorf("since %s is not before until %s", opts.Since.Format(time.RFC3339), opts.Until.Format(time.RFC3339))
	}
	ring := opts.Keyring
	if ring == nil {
		ring = s.audit.keyring()
	}
	if len(ring) == 0 {
		return nil, errors.New("no audit public key to verify the trail with: give the audit key file or its public key (--audit-key-file, --audit-public-key)")
	}
	t, err := s.readTrail(ctx, true)
	if err != nil {
		return nil, err
	}
	res, err := newChainVerifier(ring).verifyTrail(t, nil)
	if err != nil {
		return nil, fmt.Errorf("audit trail verification failed, no report: %w", err)
	}
	rep := &AuditReport{Tenant: opts.Tenant, Verification: res, Records: []AuditRecord{}}
	if !opts.Since.IsZero() {
		v := opts.Since.UTC()
		rep.Since = &v
	}
	if !opts.Until.IsZero() {
		v := opts.Until.UTC()
		rep.Until = &v
	}
	for _, r := range t.recs {
		if r.Tenant != opts.Tenant || (rep.Since != nil && r.Time.Before(*rep.Since)) || (rep.Until != nil && !r.Time.Before(*rep.Until)) {
			continue
		}
		rep.Records = append(rep.Records, r.AuditRecord)
	}
	return rep, nil
}
