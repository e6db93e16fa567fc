//go:build !unix

package pdq

import "time"

// processCPUTime is not measured here; benchmarks then omit cpu-ns/op.
func processCPUTime() time.Duration { return 0 }
