package ingest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/scope"
	"github.com/tendhealth/tend/rpm"
)

// ingestJob is one Ingest call's readings and, after its group transaction,
// its result.
type ingestJob struct {
	actor     access.Actor
	patientID uuid.UUID
	ms        []rpm.Measurement

	// Set by the group transaction.
	ids     []uuid.UUID
	scope   scope.Patient
	params  map[string]map[string]float64 // personalised rule parameters
	retakes alerting.Retakes              // findings waiting for a retake
	inScope bool
	res     IngestResult
	err     error // this job's own failure (not in scope)
}

// Group commit for ingest.
//
// A transaction's fixed costs — BEGIN, COMMIT and its WAL flush, one
// executor start-up per statement — dominate a one-reading ingest. So
// concurrent Ingest calls share transactions through a batcher: while fewer
// than Config.IngestTransactions group transactions are in flight a call
// leads and commits what is queued; under light load a job is alone in its
// transaction and waits for nothing, under heavy load groups form by
// themselves. A group holds at most one job per patient, so a patient's
// readings are still evaluated strictly in turn, and about
// groupMaxReadings readings. Each reading, its alerts and its notification
// jobs still commit in one transaction; a job that fails on its own (not in
// scope) fails alone, and a failed transaction fails every job in it.

// groupTimeout bounds one group transaction.
const groupTimeout = 30 * time.Second

// groupMaxReadings bounds the readings of one group (one job may exceed it
// alone).
const groupMaxReadings = 2 * MaxBatch

func (ig *Service) newIngester(maxRunning int) *pg.Batcher[ingestJob] {
	return &pg.Batcher[ingestJob]{
		MaxRunning: maxRunning,
		MaxBatch:   groupMaxReadings,
		Timeout:    groupTimeout,
		Admit:      admitToGroup,
		Run: func(ctx context.Context, jobs []*ingestJob) error {
			ig.metrics.GroupSize.Observe(float64(len(jobs)))
			if err := ig.ingestGroup(ctx, jobs, nil); err != nil {
				return fmt.Errorf("ingest: %w", err)
			}
			return nil
		},
	}
}

// admitToGroup lets a job join a group unless the group already has its
// patient or would exceed groupMaxReadings.
func admitToGroup(group []*ingestJob, next *ingestJob) bool {
	readings := len(next.ms)
	for _, j := range group {
		readings += len(j.ms)
	}
	return readings <= groupMaxReadings &&
		!slices.ContainsFunc(group, func(j *ingestJob) bool { return j.patientID == next.patientID })
}
