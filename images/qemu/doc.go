// Package qemu boots virtual machines for ftnas's lab tests: a kernel and
// initramfs, or UEFI firmware (OVMF, see FindOVMF) booting a disk image,
// under qemu-system-x86_64 with TCG (no KVM on these hosts), virtio-blk
// disks, virtio-net NICs, the serial console on a pipe and, optionally, a
// QMP socket.
//
// Start runs one VM; Boot does the same for a test, streams the console to
// the test log and kills qemu in Cleanup. Expect waits for console output
// matching a regexp, Result for the guest's "FTNAS-RESULT:" line, Wait for
// qemu to exit. Args (the command line) is pure.
//
// Disks can go and come back (VM.UnplugDisk, VM.PlugDisk: QMP device_del
// and device_add) or fail: a disk attached with Options.Blkdebug goes
// through qemu's blkdebug driver with BlkdebugConfig's rules, and
// VM.BreakDisk (a zero write through HMP's qemu-io, the rules' trigger)
// makes every later read and write of it fail with EIO.
package qemu
