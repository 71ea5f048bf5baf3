package userland

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dropProgram is a two-instruction sched_cls BPF program: r0 = TCX_DROP;
// exit. It and bpfLicense are package-level (never written) so that the
// addresses handed to the kernel inside the attribute block stay valid.
var dropProgram = [...]byte{
	0xb7, 0x00, 0x00, 0x00, 2, 0, 0, 0, // BPF_ALU64|BPF_MOV|BPF_K r0 = 2 (TCX_DROP)
	0x95, 0x00, 0x00, 0x00, 0, 0, 0, 0, // BPF_JMP|BPF_EXIT
}

// attachIngressDrop attaches a tcx ingress program that drops every frame
// arriving on the interface, so the host stack never sees a member's
// traffic (the bond's TAP device gets it instead). Packet sockets still see
// the frames: taps run before tcx ingress. The returned link fd detaches
// the program when closed (and when the process dies). Call it inside the
// interface's namespace.
func attachIngressDrop(ifindex int) (int, error) {
	return attachDrop(ifindex, unix.BPF_TCX_INGRESS)
}

// attachDrop attaches the drop program at a tcx hook (BPF_TCX_INGRESS or
// BPF_TCX_EGRESS) of the interface.
func attachDrop(ifindex int, hook uint32) (int, error) {
	name := "ftnas_bond_drop"
	var load [128]byte // union bpf_attr, BPF_PROG_LOAD part
	ne := binary.NativeEndian
	ne.PutUint32(load[0:], unix.BPF_PROG_TYPE_SCHED_CLS)
	ne.PutUint32(load[4:], uint32(len(dropProgram)/8))
	ne.PutUint64(load[8:], uint64(uintptr(unsafe.Pointer(&dropProgram[0]))))
	ne.PutUint64(load[16:], uint64(uintptr(unsafe.Pointer(&bpfLicense[0]))))
	// log_level, log_size, log_buf, kern_version, prog_flags stay zero.
	copy(load[48:63], name) // prog_name[16]
	// prog_ifindex (64) zero; expected_attach_type (68)
	ne.PutUint32(load[68:], hook)
	pfd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&load[0])), uintptr(len(load)))
	if errno != 0 {
		return -1, fmt.Errorf("load tcx drop program: %w", errno)
	}
	defer unix.Close(int(pfd))
	var link [64]byte // union bpf_attr, BPF_LINK_CREATE part
	ne.PutUint32(link[0:], uint32(pfd))
	ne.PutUint32(link[4:], uint32(ifindex))
	ne.PutUint32(link[8:], hook)
	lfd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_LINK_CREATE, uintptr(unsafe.Pointer(&link[0])), uintptr(len(link)))
	if errno != 0 {
		return -1, fmt.Errorf("attach tcx drop (hook %d) to ifindex %d: %w", hook, ifindex, errno)
	}
	unix.CloseOnExec(int(lfd))
	return int(lfd), nil
}

var bpfLicense = [...]byte{'G', 'P', 'L', 0}
