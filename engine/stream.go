package engine

import (
	"context"

	"github.com/tendhealth/tend/engine/stream"
)

// The live stream's vocabulary (engine/stream).
type (
	// StreamSubscription is one connected client's view of the live stream.
	StreamSubscription = stream.Subscription
	// StreamMessage is one event of the live stream.
	StreamMessage = stream.Message
)

// StreamReset is the type of the message that tells a client to refetch.
const StreamReset = stream.Reset

// Errors that end a subscription.
var (
	ErrStreamSlow   = stream.ErrSlow
	ErrStreamClosed = stream.ErrClosed
)

// Subscribe opens a live-stream subscription for a: the events a may see,
// each checked as it happens, from any process on the database. after is the
// client's Last-Event-ID (nil for none). Close it when the client goes away.
func (e *Engine) Subscribe(ctx context.Context, a Actor, after *int64) (*StreamSubscription, error) {
	return e.stream.Subscribe(ctx, a, after)
}

// CloseStreams ends every live-stream subscription of this process and
// refuses new ones (Stop does it too): call it when an HTTP server starts
// shutting down, so that it is not left waiting for streams that never end.
func (e *Engine) CloseStreams() { e.stream.Close() }

// PruneEvents deletes the live stream's events older than
// Config.EventRetention (the periodic job does it with RunWorkers).
func (e *Engine) PruneEvents(ctx context.Context) (int64, error) { return e.stream.Prune(ctx) }
