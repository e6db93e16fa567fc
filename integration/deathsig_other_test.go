//go:build !linux

package integration

import "os/exec"

// dieWithTest does nothing off Linux, which has no parent-death signal.
func dieWithTest(cmd *exec.Cmd) {}
