package redistest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill cmd when the test process dies, so a
// test binary that crashes or times out leaves no server behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
