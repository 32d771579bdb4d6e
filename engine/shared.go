package engine

import (
	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/delivery"
)

// Shared are the shared rooms an Engine wired. River runs their jobs in
// production; the rooms' own tests and benchmarks drive them by hand (work
// one delivery job, run an escalation sweep now) on the engine under test.
// Application code goes through the Engine's methods.
type Shared struct {
	Delivery *delivery.Service
	Alerting *alerting.Service
}

// Shared returns the shared rooms e wired.
func (e *Engine) Shared() Shared { return Shared{Delivery: e.delivery, Alerting: e.alerting} }
