package engine

// Hooks for the external tests (package engine_test): River's workers run
// these in production.

import "context"

// Beat runs one heartbeat: record this process, rescue dead workers' jobs.
func (e *Engine) Beat(ctx context.Context) (int64, error) { return e.heartbeat.Beat(ctx) }
