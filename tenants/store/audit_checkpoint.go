package store

import (
	"bufio"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Checkpoint is a signed statement of the trail's head at a time, kept
// outside etcd (`audit export`): whoever deletes the last records and
// moves audit-head back, or deletes the whole trail, cannot make the trail
// contain the checkpointed head again.
type Checkpoint struct {
	// Prefix is the store's key prefix, so a checkpoint of one store is
	// not taken for another's.
	Prefix string `json:"prefix"`
	// Seq and Head are the sequence number and hash of the head record;
	// HeadID is its id. Seq 0 is an empty trail.
	Seq    uint64    `json:"seq"`
	Head   string    `json:"head"`
	HeadID string    `json:"headId,omitempty"`
	Time   time.Time `json:"time"`
	KeyID  string    `json:"keyId"`
	Sig    string    `json:"sig"`
}

// ExportLine is one line of `audit export`: a record or a checkpoint.
type ExportLine struct {
	Record     *AuditRecord `json:"record,omitempty"`
	Checkpoint *Checkpoint  `json:"checkpoint,omitempty"`
}

// signingInput is what a checkpoint's signature covers: its canonical
// JSON without the signature, under a label of its own.
func (c Checkpoint) signingInput() ([]byte, error) {
	c.Sig = ""
	c.Time = c.Time.UTC()
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	return append([]byte("tenantmesh audit checkpoint v1\n"), b...), nil
}

// newCheckpoint signs a checkpoint of the record (seq, hash, id).
func (s *Store) newCheckpoint(seq uint64, hash, id string) (*Checkpoint, error) {
	key := s.audit.Key
	if key == nil {
		return nil, fmt.Errorf("%w: checkpoints are signed with it", ErrNoAuditKey)
	}
	c := &Checkpoint{Prefix: s.prefix, Seq: seq, Head: hash, HeadID: id, Time: s.now().UTC(), KeyID: key.ID()}
	in, err := c.signingInput()
	if err != nil {
		return nil, err
	}
	c.Sig = encodeSig(key.sign(in))
	return c, nil
}

// verify checks the checkpoint's signature and that it belongs to prefix.
func (c *Checkpoint) verify(ring AuditKeyring, prefix string) error {
	pub, ok := ring[c.KeyID]
	if !ok {
		return fmt.Errorf("checkpoint of %s: signed with key %q, which is not among the verifying keys %v", c.Time.Format(time.RFC3339), c.KeyID, ring.IDs())
	}
	in, err := c.signingInput()
	if err != nil {
		return err
	}
	sig, err := base64.RawURLEncoding.DecodeString(c.Sig)
	if err != nil || !ed25519.Verify(pub, in, sig) {
		return fmt.Errorf("checkpoint of %s: signature does not verify (the checkpoint was edited)", c.Time.Format(time.RFC3339))
	}
	if c.Prefix != prefix {
		return fmt.Errorf("checkpoint of %s is of the store at prefix %q, not %q", c.Time.Format(time.RFC3339), c.Prefix, prefix)
	}
	return nil
}

// maxExportLine bounds one line of an export (a retention summary of a
// full batch is about 20 KiB).
const maxExportLine = 4 << 20

// ErrNoCheckpoint is returned (wrapped) by ReadLastCheckpoint for a stream
// without checkpoint lines.
var ErrNoCheckpoint = errors.New("no checkpoint")

// ReadLastCheckpoint returns the last checkpoint of an `audit export`
// stream. A line that does not decode is an error (a damaged checkpoint
// file must not pass for a shorter one); the signature is checked later,
// by AuditVerifyWith or AuditExport.
func ReadLastCheckpoint(r io.Reader) (*Checkpoint, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxExportLine)
	var last *Checkpoint
	n := 0
	for sc.Scan() {
		n++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l ExportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if l.Checkpoint != nil {
			last = l.Checkpoint
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	if last == nil {
		return nil, fmt.Errorf("%w among %d lines", ErrNoCheckpoint, n)
	}
	return last, nil
}
