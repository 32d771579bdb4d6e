//go:build unix

package notifytest

import (
	"syscall"
	"time"
)

// ProcessCPU is the CPU time (user and system) the calling process has used
// since it started, 0 where the system does not say.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
