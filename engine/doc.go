// Package engine runs Tend's use cases: ingest, alerting, routing, triage,
// rules administration, device registration, push delivery and audit. It owns
// the SQL, the transactions and the River client and workers; package api is
// a thin HTTP layer over it.
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
