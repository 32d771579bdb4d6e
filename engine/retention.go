package engine

import "context"

// RunRetention applies every organisation's retention periods now, as the
// periodic job does (Config.RetentionInterval): rows older than a period are
// deleted in batches, each its own transaction with an audit entry. With
// opts.DryRun it counts what would go and deletes nothing. It returns a
// count per organisation and kind with a period; on an error (or when ctx
// ends) the counts so far, and the next run carries on.
func (e *Engine) RunRetention(ctx context.Context, opts RetentionOptions) ([]RetentionCount, error) {
	return e.retention.Run(ctx, opts)
}
