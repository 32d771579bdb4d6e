//go:build !unix

package notifytest

import "time"

// ProcessCPU is the CPU time the calling process has used since it started:
// 0, since this system does not say.
func ProcessCPU() time.Duration { return 0 }
