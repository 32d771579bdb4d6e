package delivery_test

import (
	"os"
	"testing"

	"github.com/tendhealth/tend/notify/notifytest"
)

// TestMain runs the tests, or, when the benchmarks start this binary again
// to run the fake providers in a process of their own
// (pushtest.StartFakes), those fakes.
func TestMain(m *testing.M) {
	if os.Getenv(notifytest.ProcessEnv) != "" {
		os.Exit(notifytest.Main(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}
