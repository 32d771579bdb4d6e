package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/pg"
)

// The hash chain. Entries are appended by the transactions they record and
// never changed; the sealer (Seal, run by Sealer in every process, one at a
// time under an advisory lock inside tend_audit_unchained) numbers the committed
// ones and inserts, for each, a link into audit_chain: its seq, the entry's
// id and hash = SHA-256(previous hash ‖ canonical content). Verify
// recomputes the chain from the stored rows with its own implementation of
// the canonical form, so a bug or a tampered function in the database does
// not vouch for itself.

// Querier runs queries: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// SealBatch is the most entries one Seal call chains.
const SealBatch = 5000

// Seal chains up to max committed unsealed entries and returns how many it
// sealed (0 when there were none or another process is sealing). The
// database finds the entries and checks that the links join up
// (tend_audit_unchained and tend_audit_link, migration 00029); the hashes
// are computed here, off the database's cores.
func Seal(ctx context.Context, pool *pgxpool.Pool, max int) (int, error) {
	var n int
	err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, unchainedSQL, max)
		if err != nil {
			return err
		}
		var p sealPass
		for rows.Next() {
			if err := p.add(rows.RawValues()); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Err(); err != nil || len(p.ids) == 0 {
			return err
		}
		var headSeq int64
		var head []byte
		if err := tx.QueryRow(ctx, sealHeadSQL).Scan(&headSeq, &head); err != nil {
			return err
		}
		p.chain(headSeq, head)
		if _, err := tx.Exec(ctx, linkSQL, p.seqs, p.ids, p.prevs, p.hashes); err != nil {
			return err
		}
		n = len(p.ids)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("seal audit entries: %w", err)
	}
	return n, nil
}

// sealPass is one pass's entries: their ids and canonical forms, built from
// the text of each column as received (no value is decoded), then their links.
type sealPass struct {
	ids           []int64
	canon         []byte
	ends          []int // canon[ends[i-1]:ends[i]] is entry i's
	seqs          []int64
	prevs, hashes [][]byte
}

// add appends an entry from unchainedSQL's columns: id, time, actor id,
// role, action, patient id, object type, object id, request id, outcome,
// detail, organisation, each text or NULL (nil).
func (p *sealPass) add(cols [][]byte) error {
	if len(cols) != 12 || cols[0] == nil {
		return fmt.Errorf("unchained entry: %d columns", len(cols))
	}
	id, err := strconv.ParseInt(string(cols[0]), 10, 64)
	if err != nil {
		return fmt.Errorf("unchained entry id: %w", err)
	}
	p.ids = append(p.ids, id)
	p.canon = append(p.canon, "tend.audit.v1"...)
	for _, f := range cols[:11] {
		if f == nil {
			p.canon = append(p.canon, 0)
			continue
		}
		p.canon = appendField(p.canon, f)
	}
	switch org := cols[11]; {
	case org == nil:
		p.canon = append(p.canon, 0)
	case string(org) != access.DefaultOrg:
		p.canon = appendField(p.canon, org)
	}
	p.ends = append(p.ends, len(p.canon))
	return nil
}

// chain computes the links after the head: seq headSeq+1, … and each hash
// over the previous one.
func (p *sealPass) chain(headSeq int64, head []byte) {
	n := len(p.ids)
	p.seqs, p.prevs, p.hashes = make([]int64, n), make([][]byte, n), make([][]byte, n)
	hashes := make([]byte, n*sha256.Size)
	start := 0
	for i := range n {
		p.seqs[i], p.prevs[i] = headSeq+int64(i)+1, head
		h := sha256.New()
		h.Write(head)
		h.Write(p.canon[start:p.ends[i]])
		head = h.Sum(hashes[i*sha256.Size : i*sha256.Size : (i+1)*sha256.Size])
		p.hashes[i], start = head, p.ends[i]
	}
}

// Sealer seals the audit trail in the background.
type Sealer struct {
	DB *pgxpool.Pool
	// Interval is the pause between passes that found nothing more to seal.
	Interval time.Duration
	Log      *slog.Logger
}

// Run seals every Interval until ctx ends, then closes done. A pass that
// fills a whole batch is followed at once by the next.
func (s *Sealer) Run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		for {
			n, err := Seal(ctx, s.DB, SealBatch)
			if err != nil {
				if ctx.Err() == nil {
					s.Log.WarnContext(ctx, "audit seal failed", "error", err)
				}
				break
			}
			if n < SealBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Link is one sealed entry as the chain covers it.
type Link struct {
	Seq, ID int64
	// Present is false when the link's entry is missing from audit_entries.
	Present    bool
	AtMicros   int64
	ActorID    *string
	ActorRole  string
	Action     string
	PatientID  *string
	ObjectType string
	ObjectID   *string
	RequestID  *string
	Outcome    string
	Detail     *string // jsonb text
	// OrgID is the entry's organisation (nil: none).
	OrgID    *string
	PrevHash []byte
	Hash     []byte
}

// Canonical is the byte string the entry's hash covers (the same as the
// database's view audit_entry_canonical): a version tag, then each content column
// in order as 0x00 for NULL or 0x01, a 4-byte big-endian length and the text.
// The organisation comes last, and only for an entry outside the default
// organisation, so that every entry written before organisations keeps its
// hash.
func (l Link) Canonical() []byte { return l.appendCanonical(nil) }

// appendCanonical appends Canonical() to b.
func (l Link) appendCanonical(b []byte) []byte {
	b = append(b, "tend.audit.v1"...)
	var num [40]byte
	b = appendField(b, strconv.AppendInt(num[:0], l.ID, 10))
	b = appendField(b, strconv.AppendInt(num[20:20], l.AtMicros, 10))
	for _, f := range [...]*string{l.ActorID, &l.ActorRole, &l.Action, l.PatientID, &l.ObjectType, l.ObjectID,
		l.RequestID, &l.Outcome, l.Detail} {
		if f == nil {
			b = append(b, 0)
			continue
		}
		b = appendField(b, *f)
	}
	switch {
	case l.OrgID == nil:
		b = append(b, 0)
	case *l.OrgID != access.DefaultOrg:
		b = appendField(b, *l.OrgID)
	}
	return b
}

// appendField appends one present field: 0x01, its 4-byte big-endian length
// and its bytes.
func appendField[T string | []byte](b []byte, f T) []byte {
	b = append(b, 1)
	b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
	return append(b, f...)
}

// Compute is SHA-256(prev ‖ Canonical()).
func (l Link) Compute(prev []byte) []byte { return chainHash(prev, l.Canonical()) }

// chainHash is SHA-256(prev ‖ canonical).
func chainHash(prev, canonical []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(canonical)
	return h.Sum(make([]byte, 0, sha256.Size))
}

// genesis is the previous hash of the first entry.
var genesis = make([]byte, sha256.Size)

// Tamper kinds Verify names.
const (
	Edited    = "edited"    // an entry's content no longer matches its hash (or the checkpoint's)
	Deleted   = "deleted"   // entries are missing from the chain
	Reordered = "reordered" // an entry sits before the entry it was chained after
	Inserted  = "inserted"  // entries that were never chained sit inside the chain
	Truncated = "truncated" // the chain is shorter than an exported checkpoint
)

// Break is the first place the chain does not verify.
type Break struct {
	Seq    int64  `json:"seq"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

func (b *Break) Error() string { return fmt.Sprintf("entry %d: %s: %s", b.Seq, b.Kind, b.Detail) }

// Report is the result of Verify.
type Report struct {
	// Sealed is the number of sealed entries checked; HeadSeq and Head the
	// last one's.
	Sealed   int64
	HeadSeq  int64
	Head     []byte
	Unsealed int64
	// Break is the first problem found; nil when the chain verifies.
	Break *Break
}

// Verify walks the whole chain in order, recomputing every hash and link,
// and, when cp is not nil, checks that the chain still contains the
// checkpoint's head at its place. It stops at the first break.
func Verify(ctx context.Context, q Querier, cp *Checkpoint) (Report, error) {
	var r Report
	if err := q.QueryRow(ctx, unsealedSQL).Scan(&r.Unsealed); err != nil {
		return r, fmt.Errorf("verify audit: %w", err)
	}
	prev, lastSeq := genesis, int64(0)
	var atCheckpoint []byte
	for {
		links, err := readLinks(ctx, q, lastSeq+1, 10_000)
		if err != nil {
			return r, err
		}
		for _, l := range links {
			if b, err := check(ctx, q, l, prev, lastSeq); err != nil || b != nil {
				r.Break = b
				return r, err
			}
			prev, lastSeq = l.Hash, l.Seq
			r.Sealed++
			if cp != nil && l.Seq == cp.Seq {
				atCheckpoint = l.Hash
			}
		}
		if len(links) < 10_000 {
			break
		}
	}
	r.HeadSeq, r.Head = lastSeq, prev
	if cp != nil {
		want, err := hex.DecodeString(cp.Hash)
		if err != nil {
			return r, fmt.Errorf("checkpoint hash: %w", err)
		}
		switch {
		case atCheckpoint == nil:
			r.Break = &Break{Seq: lastSeq + 1, Kind: Truncated,
				Detail: fmt.Sprintf("the checkpoint covers %d entries but the chain ends at %d", cp.Seq, lastSeq)}
		case !bytes.Equal(atCheckpoint, want):
			r.Break = &Break{Seq: cp.Seq, Kind: Edited,
				Detail: "the chain was rewritten: its hash here differs from the checkpoint's"}
		}
	}
	return r, nil
}

// check verifies one link against the previous hash and seq, and classifies
// a break.
func check(ctx context.Context, q Querier, l Link, prev []byte, lastSeq int64) (*Break, error) {
	if !l.Present {
		return &Break{Seq: l.Seq, Kind: Deleted, Detail: "the entry chained here is missing"}, nil
	}
	if !bytes.Equal(l.Compute(l.PrevHash), l.Hash) {
		return &Break{Seq: l.Seq, Kind: Edited, Detail: "its content does not match its hash"}, nil
	}
	if bytes.Equal(l.PrevHash, prev) {
		if l.Seq != lastSeq+1 {
			return &Break{Seq: lastSeq + 1, Kind: Edited, Detail: fmt.Sprintf("sequence numbers were changed: %d follows %d", l.Seq, lastSeq)}, nil
		}
		return nil, nil
	}
	// The link is broken: where is the entry it was chained after?
	var at int64
	err := q.QueryRow(ctx, findHashSQL, l.PrevHash).Scan(&at)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if l.Seq > lastSeq+1 {
			return &Break{Seq: lastSeq + 1, Kind: Deleted, Detail: span(lastSeq+1, l.Seq-1) + " missing"}, nil
		}
		return &Break{Seq: l.Seq, Kind: Deleted, Detail: "the entry it was chained after is missing"}, nil
	case err != nil:
		return nil, fmt.Errorf("verify audit: %w", err)
	case at > l.Seq:
		return &Break{Seq: l.Seq, Kind: Reordered, Detail: fmt.Sprintf("it was chained after entry %d, which now follows it", at)}, nil
	case at < lastSeq:
		return &Break{Seq: at + 1, Kind: Inserted, Detail: fmt.Sprintf("%s not part of the chain: entry %d was chained after %d", span(at+1, lastSeq), l.Seq, at)}, nil
	}
	return &Break{Seq: l.Seq, Kind: Edited, Detail: "its link to the previous entry does not match"}, nil
}

// span names entries a..b.
func span(a, b int64) string {
	if a == b {
		return fmt.Sprintf("entry %d is", a)
	}
	return fmt.Sprintf("entries %d to %d are", a, b)
}

func readLinks(ctx context.Context, q Querier, from int64, n int) ([]Link, error) {
	rows, err := q.Query(ctx, chainSQL, from, n)
	if err != nil {
		return nil, fmt.Errorf("verify audit: %w", err)
	}
	links, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Link, error) {
		var l Link
		err := r.Scan(&l.Seq, &l.ID, &l.Present, &l.AtMicros, &l.ActorID, &l.ActorRole, &l.Action, &l.PatientID, &l.ObjectType,
			&l.ObjectID, &l.RequestID, &l.Outcome, &l.Detail, &l.OrgID, &l.PrevHash, &l.Hash)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("verify audit: %w", err)
	}
	return links, nil
}

// Checkpoint pins the chain's head: keep it apart from the database (print
// it to a log, a ticket, a WORM bucket) and a later truncation or rewrite of
// the chain before it is detectable.
type Checkpoint struct {
	Seq   int64     `json:"seq"`
	Count int64     `json:"count"`
	Hash  string    `json:"hash"` // hex
	At    time.Time `json:"at"`
	// PublicKey and Signature (base64) are set when the checkpoint is signed
	// with an Ed25519 key.
	PublicKey string `json:"public_key,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// message is what the signature covers.
func (c Checkpoint) message() []byte {
	return fmt.Appendf(nil, "tend.audit.checkpoint.v1\n%d\n%d\n%s\n%s\n", c.Seq, c.Count, c.Hash, c.At.UTC().Format(time.RFC3339Nano))
}

// Head returns the current checkpoint (unsigned): the last sealed entry's
// seq and hash and the number of sealed entries.
func Head(ctx context.Context, q Querier, at time.Time) (Checkpoint, error) {
	c := Checkpoint{At: at.UTC(), Hash: hex.EncodeToString(genesis)}
	var h []byte
	err := q.QueryRow(ctx, headSQL).Scan(&c.Seq, &h, &c.Count)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("audit head: %w", err)
	}
	c.Hash = hex.EncodeToString(h)
	return c, nil
}

// Sign signs c with key.
func (c *Checkpoint) Sign(key ed25519.PrivateKey) {
	c.PublicKey = base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.message()))
}

// CheckSignature verifies c's signature with pub (not with the key the
// checkpoint names, which anyone could replace).
func (c Checkpoint) CheckSignature(pub ed25519.PublicKey) error {
	if c.Signature == "" {
		return errors.New("the checkpoint is not signed")
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(pub, c.message(), sig) {
		return errors.New("the checkpoint's signature does not verify with the given public key")
	}
	return nil
}

// ParseSigningKey reads an Ed25519 key given as base64 of its 32-byte seed
// or 64-byte private key. Errors never show the key.
func ParseSigningKey(s string) (ed25519.PrivateKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	switch {
	case err != nil:
		return nil, errors.New("audit signing key: not standard base64")
	case len(b) == ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case len(b) == ed25519.PrivateKeySize:
		return ed25519.PrivateKey(b), nil
	}
	return nil, fmt.Errorf("audit signing key: %d bytes, want a 32-byte seed or a 64-byte private key", len(b))
}

// ParsePublicKey reads a base64 Ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("audit public key: want base64 of 32 bytes")
	}
	return ed25519.PublicKey(b), nil
}
