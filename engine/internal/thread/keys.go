package thread

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/sealed"
)

// A patient's data key. The records of one patient — their threads' message
// bodies, their symptom reports' notes, their attachments — are sealed under
// a key of their own, created on first need and stored only wrapped under
// the server's keyring (table patient_keys). A record sealed under it names
// the key "p:<patient id>". Erasing the patient deletes the wrapped key:
// what it sealed then opens nowhere, whatever keys the server holds
// (crypto-shredding). Rotating the server's keys re-wraps the patient keys;
// the records under them stay as they are.

// ErrErased: the patient was erased; their data key is destroyed and no new
// one is made.
var ErrErased = errors.New("the patient's data was erased")

// keyPrefix starts the key id of a record sealed under a patient's key. A
// server key id never holds ':' (sealed.ValidID), so the two never clash.
const keyPrefix = "p:"

// PatientKeyID is the key id stored beside a record sealed under patient's
// data key.
func PatientKeyID(patient uuid.UUID) string { return keyPrefix + patient.String() }

// KeyPatient returns the patient whose data key keyID names, if it names one.
func KeyPatient(keyID string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(keyID, keyPrefix)
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(rest)
	return id, err == nil
}

// IsPatientKeyLike is the SQL LIKE pattern of patient key ids, for queries
// that pick server-sealed rows (NOT LIKE).
const IsPatientKeyLike = "p:%"

// wrapAAD binds a wrapped key to its patient.
func wrapAAD(patient uuid.UUID) []byte { return sealed.AAD("patient.key", patient.String()) }

// PatientKey is a patient's data key, unwrapped.
type PatientKey struct {
	Patient uuid.UUID
	key     *sealed.Key
}

// Seal encrypts plaintext under the patient's key, bound to aad, and returns
// the key id to store beside it.
func (k *PatientKey) Seal(plaintext, aad []byte) (keyID string, ciphertext []byte) {
	return PatientKeyID(k.Patient), k.key.Seal(plaintext, aad)
}

// Wrapped is a patient key as stored: sealed under server key KeyID.
type Wrapped struct {
	Patient uuid.UUID
	KeyID   string
	Data    []byte
}

// Unwrap opens a stored patient key with the server's keyring.
func Unwrap(ring *sealed.Keyring, w Wrapped) (*PatientKey, error) {
	if ring == nil {
		return nil, ErrNoKeys
	}
	raw, err := ring.Open(w.KeyID, w.Data, wrapAAD(w.Patient))
	if err != nil {
		return nil, fmt.Errorf("%w: patient key (wrapped under %q): %w", ErrUnreadable, w.KeyID, err)
	}
	defer clear(raw)
	k, err := sealed.KeyFrom(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: patient key: %w", ErrUnreadable, err)
	}
	return &PatientKey{Patient: w.Patient, key: k}, nil
}

// Rewrap re-seals a stored patient key under the keyring's current key.
func Rewrap(ring *sealed.Keyring, w Wrapped) (Wrapped, error) {
	raw, err := ring.Open(w.KeyID, w.Data, wrapAAD(w.Patient))
	if err != nil {
		return Wrapped{}, fmt.Errorf("%w: patient key %s (wrapped under %q): %w", ErrUnreadable, w.Patient, w.KeyID, err)
	}
	defer clear(raw)
	id, data := ring.Seal(raw, wrapAAD(w.Patient))
	return Wrapped{Patient: w.Patient, KeyID: id, Data: data}, nil
}

// EnsureKeys returns the data keys of patients in tx, creating those that do
// not exist yet; an erased patient (or one that does not exist) has none in
// the result. It is one round trip (two when another transaction created a
// key at the same moment).
func EnsureKeys(ctx context.Context, tx pgx.Tx, ring *sealed.Keyring, now time.Time, patients ...uuid.UUID) (map[uuid.UUID]*PatientKey, error) {
	if ring == nil {
		return nil, ErrNoKeys
	}
	out := make(map[uuid.UUID]*PatientKey, len(patients))
	for range 2 {
		var need []uuid.UUID
		for _, p := range patients {
			if out[p] == nil && !slices.Contains(need, p) {
				need = append(need, p)
			}
		}
		if len(need) == 0 {
			break
		}
		ids, data := make([]string, len(need)), make([][]byte, len(need))
		for i, p := range need {
			_, raw := sealed.NewKey()
			ids[i], data[i] = ring.Seal(raw, wrapAAD(p))
			clear(raw)
		}
		rows, err := tx.Query(ctx, ensureKeysSQL, need, ids, data, now)
		if err != nil {
			return nil, fmt.Errorf("patient keys: %w", err)
		}
		ws, err := pgx.CollectRows(rows, scanWrapped)
		if err != nil {
			return nil, fmt.Errorf("patient keys: %w", err)
		}
		if len(ws) == len(need) {
			patients = nil // every one answered: no second round
		}
		for _, w := range ws {
			k, err := Unwrap(ring, w)
			if err != nil {
				return nil, err
			}
			out[w.Patient] = k
		}
	}
	return out, nil
}

// EnsureKey is EnsureKeys for one patient: ErrErased when they were erased.
func EnsureKey(ctx context.Context, tx pgx.Tx, ring *sealed.Keyring, now time.Time, patient uuid.UUID) (*PatientKey, error) {
	keys, err := EnsureKeys(ctx, tx, ring, now, patient)
	if err != nil {
		return nil, err
	}
	k, ok := keys[patient]
	if !ok {
		return nil, fmt.Errorf("patient key: %w", ErrErased)
	}
	return k, nil
}

func scanWrapped(r pgx.CollectableRow) (Wrapped, error) {
	var w Wrapped
	err := r.Scan(&w.Patient, &w.KeyID, &w.Data)
	return w, err
}

// Opener opens sealed records, under the server's keys or a patient's,
// loading each patient's key once, on first need, through q. Open must not
// be called while q has rows open: load the patients first (Load) when
// opening inside a row scan. An Opener serves one transaction or request.
type Opener struct {
	ring *sealed.Keyring
	q    pg.Querier
	keys map[uuid.UUID]*PatientKey // nil: no key (destroyed)
}

// NewOpener returns an Opener that reads patient keys through q.
func NewOpener(ring *sealed.Keyring, q pg.Querier) *Opener {
	return &Opener{ring: ring, q: q, keys: map[uuid.UUID]*PatientKey{}}
}

// Load reads the keys of patients not loaded yet (one round trip, none when
// every one is).
func (o *Opener) Load(ctx context.Context, patients ...uuid.UUID) error {
	var need []uuid.UUID
	for _, p := range patients {
		if _, ok := o.keys[p]; !ok && p != uuid.Nil {
			need = append(need, p)
		}
	}
	if len(need) == 0 {
		return nil
	}
	if o.ring == nil {
		return ErrNoKeys
	}
	rows, err := o.q.Query(ctx, patientKeysSQL, need)
	if err != nil {
		return fmt.Errorf("patient keys: %w", err)
	}
	ws, err := pgx.CollectRows(rows, scanWrapped)
	if err != nil {
		return fmt.Errorf("patient keys: %w", err)
	}
	for _, p := range need {
		o.keys[p] = nil
	}
	for _, w := range ws {
		k, err := Unwrap(o.ring, w)
		if err != nil {
			return err
		}
		o.keys[w.Patient] = k
	}
	return nil
}

// Open decrypts a record sealed under keyID with aad: ErrUnreadable (and
// ErrErased when the patient's key was destroyed) when it does not open.
func (o *Opener) Open(ctx context.Context, keyID string, ct, aad []byte) ([]byte, error) {
	patient, ok := KeyPatient(keyID)
	if !ok {
		return Open(o.ring, keyID, ct, aad)
	}
	if err := o.Load(ctx, patient); err != nil {
		return nil, err
	}
	k := o.keys[patient]
	if k == nil {
		return nil, fmt.Errorf("%w (key %q): %w", ErrUnreadable, keyID, ErrErased)
	}
	pt, err := k.key.Open(ct, aad)
	if err != nil {
		return nil, fmt.Errorf("%w (key %q): %w", ErrUnreadable, keyID, err)
	}
	return pt, nil
}

// Ring is the server's keyring the Opener falls back to.
func (o *Opener) Ring() *sealed.Keyring { return o.ring }
