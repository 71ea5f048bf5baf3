package qemu

import (
	"encoding/json"
	"fmt"
	"strings"
)

// BlkdebugTrigger is the block-layer event that switches BlkdebugConfig's
// error rules on: a write-zeroes request, which the guest cannot send to
// a disk attached with Options.Blkdebug (its device has write-zeroes
// off), so only the host's VM.BreakDisk makes it.
const BlkdebugTrigger = "pwritev_zero"

// BlkdebugConfig is a blkdebug config file for Options.Blkdebug: the
// disk works (state 1) until the BlkdebugTrigger event, then (state 2)
// every read and every write fails with errno (5 is EIO) for good. The
// write that triggers it still goes through.
func BlkdebugConfig(errno int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# ftnas: healthy until a zero write (%s), then failing.\n", BlkdebugTrigger)
	fmt.Fprintf(&b, "[set-state]\nstate = \"1\"\nevent = %q\nnew_state = \"2\"\n", BlkdebugTrigger)
	for _, ev := range []string{"read_aio", "write_aio"} {
		fmt.Fprintf(&b, "\n[inject-error]\nstate = \"2\"\nevent = %q\nerrno = \"%d\"\nonce = \"off\"\n", ev, errno)
	}
	return b.String()
}

// HMP runs a human monitor command (QMP human-monitor-command) and
// returns its output.
func (vm *VM) HMP(command string) (string, error) {
	ret, err := vm.QMP("human-monitor-command", map[string]any{"command-line": command})
	if err != nil {
		return "", err
	}
	var out string
	if err := json.Unmarshal(ret, &out); err != nil {
		return "", fmt.Errorf("qmp human-monitor-command %q: reply %s: %w", command, ret, err)
	}
	return out, nil
}

// BreakDisk makes disk id (Options.Disks' index i is "diskI"), attached
// with Options.Blkdebug and BlkdebugConfig, fail every read and write
// from now on: it writes 512 zero bytes at offset through the disk's
// drive (HMP qemu-io, the BlkdebugTrigger event). The zeros land on the
// image: offset must be a 512-byte-aligned spot the guest does not use
// or that already holds zeros. qemu-io prints its own report on qemu's
// standard output, the console.
func (vm *VM) BreakDisk(id string, offset int64) error {
	if offset < 0 || offset%512 != 0 {
		return fmt.Errorf("qemu: break %s: offset %d is not a multiple of 512", id, offset)
	}
	out, err := vm.HMP(fmt.Sprintf("qemu-io drive-%s \"write -z %d 512\"", id, offset))
	if err != nil {
		return fmt.Errorf("qemu: break %s: %w", id, err)
	}
	if strings.TrimSpace(out) != "" {
		// HMP answers only its own errors ("Device not found"); the
		// command's output goes to the console.
		return fmt.Errorf("qemu: break %s: %s", id, strings.TrimSpace(out))
	}
	return nil
}
