// Package engine is the composition root of Tend's use cases. Each use case
// is a package of its own — ingest, triage, rulestore, identity, care — built
// on shared rooms (access, audit, alerting, delivery and engine/internal/*);
// this package builds them, wires them together, registers every River
// worker (workers.go) and runs them. Its Engine embeds the use-case services,
// so one value serves every use case; package api depends on narrow
// interfaces of it. docs/architecture.md draws the tree and its import rules.
//
// The guarantee everything serves: a reading (or symptom report), the alerts
// it raises and the River jobs that will notify someone about them commit in
// one Postgres transaction. Every read or write of PHI appends an audit entry
// in the same transaction.
//
// Usage:
//
//	eng, err := engine.New(engine.Config{Pool: pool, Senders: senders, RunWorkers: true})
//	if err != nil { … }
//	if err := eng.Start(ctx); err != nil { … } // loads stored rules, runs workers
//	defer eng.Stop(context.Background())
//
//	res, err := eng.Ingest(ctx, actor, engine.IngestRequest{PatientID: id, Readings: readings})
//	// res.Alerts lists the alerts raised; their pushes are already queued.
//
// Callers act as an Actor (user, role, patient, request id). Objects outside
// the actor's scope answer ErrNotFound, never ErrForbidden, so existence does
// not leak. Invalid input is a *rpm.ValidationError listing every field.
//
// Build the pool with ConfigurePool so uuid.UUID values travel in binary.
package engine
