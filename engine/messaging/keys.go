package messaging

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/thread"
)

// DefaultRotateBatch is how many records one transaction of RotateKeys
// re-seals.
const DefaultRotateBatch = 500

// SealedState says whether sealed records exist, and how many are not
// sealed under the current key.
type SealedState struct {
	// Exist: some message or symptom note is sealed, so keys are needed to
	// read it.
	Exist bool
	// Stale counts the records sealed under an older key (or, for notes
	// written before encryption, not sealed at all); 0 with no keyring.
	Stale int64
}

// Sealed reports on the sealed records.
func (ms *Service) Sealed(ctx context.Context) (SealedState, error) {
	current := ""
	if ms.keys != nil {
		current = ms.keys.Current()
	}
	var st SealedState
	if err := ms.pool.QueryRow(ctx, countSealedSQL, current).Scan(&st.Exist, &st.Stale); err != nil {
		return st, fmt.Errorf("sealed records: %w", err)
	}
	if ms.keys == nil {
		st.Stale = 0
	}
	return st, nil
}

// Rotated counts what RotateKeys re-sealed.
type Rotated struct {
	Messages int `json:"messages"`
	Notes    int `json:"notes"`
	// PatientKeys counts the patients' data keys re-wrapped: what they seal
	// stays as it is.
	PatientKeys int `json:"patient_keys"`
}

// RotateKeys re-seals every message body and symptom note that is sealed
// under an older server key, and re-wraps every patient's data key wrapped
// under one (the records under a patient's key stay as they are), in transactions of batch records (default
// DefaultRotateBatch), so the old keys can then be dropped. It is
// resumable: each batch commits on its own, and a run that stops (an error,
// a cancelled ctx, or onBatch returning an error) leaves only records still
// to do, which the next run picks up. onBatch (optional) is called after
// each committed batch with the totals so far. A record that does not open
// with any configured key stops the run with an error naming its id.
func (ms *Service) RotateKeys(ctx context.Context, batch int, onBatch func(Rotated) error) (Rotated, error) {
	var done Rotated
	if ms.keys == nil {
		return done, thread.ErrNoKeys
	}
	if batch <= 0 {
		batch = DefaultRotateBatch
	}
	current := ms.keys.Current()
	for _, notes := range []bool{false, true} {
		after := uuid.Nil
		for {
			n, last, err := ms.rotateBatch(ctx, current, after, batch, notes)
			if err != nil {
				return done, err
			}
			if n == 0 {
				break
			}
			after = last
			if notes {
				done.Notes += n
			} else {
				done.Messages += n
			}
			if onBatch != nil {
				if err := onBatch(done); err != nil {
					return done, err
				}
			}
		}
	}
	after := uuid.Nil
	for {
		n, last, err := ms.rewrapBatch(ctx, current, after, batch)
		if err != nil || n == 0 {
			return done, err
		}
		after = last
		done.PatientKeys += n
		if onBatch != nil {
			if err := onBatch(done); err != nil {
				return done, err
			}
		}
	}
}

// rewrapBatch re-wraps one batch of patients' data keys after patient after
// under the current key, and returns how many and the last patient.
func (ms *Service) rewrapBatch(ctx context.Context, current string, after uuid.UUID, batch int) (int, uuid.UUID, error) {
	var ids []uuid.UUID
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, stalePatientKeysSQL, current, after, batch)
		if err != nil {
			return fmt.Errorf("key rotation: patient keys: %w", err)
		}
		ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (thread.Wrapped, error) {
			var w thread.Wrapped
			err := r.Scan(&w.Patient, &w.KeyID, &w.Data)
			return w, err
		})
		if err != nil {
			return fmt.Errorf("key rotation: patient keys: %w", err)
		}
		data := make([][]byte, len(ws))
		for i, w := range ws {
			nw, err := thread.Rewrap(ms.keys, w)
			if err != nil {
				return fmt.Errorf("key rotation: %w", err)
			}
			ids, data[i] = append(ids, w.Patient), nw.Data
		}
		if len(ids) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, rewrapPatientKeysSQL, ids, current, data); err != nil {
			return fmt.Errorf("key rotation: patient keys: %w", err)
		}
		return nil
	})
	if err != nil || len(ids) == 0 {
		return 0, uuid.Nil, err
	}
	return len(ids), ids[len(ids)-1], nil
}

// rotateBatch re-seals one batch of messages (or notes) after id after, and
// returns how many it re-sealed and the last id.
func (ms *Service) rotateBatch(ctx context.Context, current string, after uuid.UUID, batch int, notes bool) (int, uuid.UUID, error) {
	var n int
	var last uuid.UUID
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		q := sealedMessagesSQL
		if notes {
			q = sealedNotesSQL
		}
		rows, err := tx.Query(ctx, q, current, after, batch)
		if err != nil {
			return fmt.Errorf("key rotation: %w", err)
		}
		var ids []uuid.UUID
		var cts [][]byte
		for rows.Next() {
			var id, owner uuid.UUID
			var keyID *string
			var ct []byte
			var plain *string
			if notes {
				err = rows.Scan(&id, &owner, &keyID, &ct, &plain)
			} else {
				var k string
				err = rows.Scan(&id, &owner, &k, &ct)
				keyID = &k
			}
			if err != nil {
				rows.Close()
				return fmt.Errorf("key rotation: %w", err)
			}
			aad := thread.BodyAAD(owner, id)
			if notes {
				aad = thread.NoteAAD(owner, id)
			}
			var pt []byte
			switch {
			case keyID != nil:
				if pt, err = thread.Open(ms.keys, *keyID, ct, aad); err != nil {
					rows.Close()
					kind := "message"
					if notes {
						kind = "symptom report"
					}
					return fmt.Errorf("key rotation: %s %s: %w", kind, id, err)
				}
			case plain != nil:
				pt = []byte(*plain) // a note stored before notes were sealed
			default:
				continue
			}
			_, sealedCT := ms.keys.Seal(pt, aad)
			clear(pt)
			ids, cts = append(ids, id), append(cts, sealedCT)
			last = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("key rotation: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		q = resealMessagesSQL
		if notes {
			q = resealNotesSQL
		}
		if _, err := tx.Exec(ctx, q, ids, current, cts); err != nil {
			return fmt.Errorf("key rotation: store: %w", err)
		}
		n = len(ids)
		return nil
	})
	if err != nil {
		return 0, uuid.Nil, err
	}
	return n, last, nil
}
