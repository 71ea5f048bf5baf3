package fence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Fence is the lease program attached to one interface for one address.
type Fence struct {
	ifname string
	addr   netip.Addr
	m      *ebpf.Map
	progs  []*ebpf.Program // ingress, egress
	links  []link.Link
	pinDir string // "" when not pinned
}

// Pin file names in Options.PinDir.
var pinNames = [...]string{"lease", "ingress", "egress"}

// Offsets in struct __sk_buff and in the Ethernet frame.
const (
	skbData    = 76
	skbDataEnd = 80
	ethType    = 12
	ipSrc      = 14 + 12
	ipDst      = 14 + 16
	arpSPA     = 14 + 14
	arpTPA     = 14 + 24
	minFrame   = 14 + 28 // Ethernet + ARP; also covers the IPv4 addresses
	tcxNext    = -1
	tcxDrop    = 2
)

// instructions is the program for one direction: pass unless the lease
// has expired and the frame is IPv4 to the address (ingress) or from it
// (egress), or ARP asking for it (ingress: its target is the address, so
// the node does not answer) or claiming it (egress: its sender is the
// address). Other hosts' ARP about the address passes both ways: a
// fenced standby may ask who has the VIP and hear the answer.
func instructions(m *ebpf.Map, ingress bool) asm.Instructions {
	// Ethertypes as a little-endian load of the big-endian field reads them.
	const etIPv4, etARP = 0x0008, 0x0608
	ipOff, arpOff := int16(ipSrc), int16(arpSPA)
	if ingress {
		ipOff, arpOff = ipDst, arpTPA
	}
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord), // deadline
		asm.LoadMem(asm.R8, asm.R0, 8, asm.Word),  // address, network order
		asm.FnKtimeGetNs.Call(),
		asm.JLE.Reg(asm.R0, asm.R7, "pass"),
		asm.LoadMem(asm.R2, asm.R6, skbData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, minFrame),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R5, asm.R2, ethType, asm.Half),
		asm.JEq.Imm(asm.R5, etIPv4, "ip"),
		asm.JEq.Imm(asm.R5, etARP, "arp"),
		asm.Ja.Label("pass"),
		asm.LoadMem(asm.R5, asm.R2, ipOff, asm.Word).WithSymbol("ip"),
		asm.JEq.Reg(asm.R5, asm.R8, "drop"),
		asm.Ja.Label("pass"),
		asm.LoadMem(asm.R5, asm.R2, arpOff, asm.Word).WithSymbol("arp"),
		asm.JEq.Reg(asm.R5, asm.R8, "drop"),
		asm.Mov.Imm(asm.R0, tcxNext).WithSymbol("pass"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcxDrop).WithSymbol("drop"),
		asm.Return(),
	}
}

// Attach loads the program for addr (IPv4) and attaches it at tcx ingress
// and egress of ifname. The lease starts expired: call Renew before the
// address is added. Call it in the interface's network namespace. The
// program lives as long as the process: see AttachPinned.
func Attach(ifname string, addr netip.Addr) (*Fence, error) {
	return attach(ifname, addr)
}

// AttachPinned is Attach with the lease map and both links pinned in
// dir, a directory on a BPF filesystem (MountBPFFS): the program stays
// attached, and the lease runs out, after the process dies, even by
// kill -9. A fence a previous process left pinned in dir is removed
// first (a restarted nasd takes over). Close unpins.
func AttachPinned(ifname string, addr netip.Addr, dir string) (*Fence, error) {
	if err := Sweep(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fence: pin directory: %w", err)
	}
	f, err := attach(ifname, addr)
	if err != nil {
		return nil, err
	}
	f.pinDir = dir
	pin := func(name string, p func(string) error) error {
		if err := p(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("fence: pin %s in %s (a BPF filesystem?): %w", name, dir, err)
		}
		return nil
	}
	err = pin(pinNames[0], f.m.Pin)
	for i, l := range f.links {
		if err == nil {
			err = pin(pinNames[1+i], l.Pin)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Sweep removes a fence pinned in dir (by a process that died without
// Close), detaching it. A missing dir or pin is no error.
func Sweep(dir string) error {
	var errs []error
	for _, n := range pinNames {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fence: remove the fence pinned in %s: %w", dir, err)
	}
	return nil
}

// MountBPFFS makes sure dir is a BPF filesystem, mounting one there if
// it is not (as systemd does at /sys/fs/bpf).
func MountBPFFS(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("fence: mount a BPF filesystem on %s: %w", dir, err)
	}
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil // a new folder in a BPF filesystem
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("fence: mount a BPF filesystem on %s: %w", dir, err)
	}
	return nil
}

func attach(ifname string, addr netip.Addr) (*Fence, error) {
	if !addr.Is4() {
		return nil, fmt.Errorf("fence: attach: %v is not an IPv4 address", addr)
	}
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("fence: attach to %s: %w", ifname, err)
	}
	f := &Fence{ifname: ifname, addr: addr}
	f.m, err = ebpf.NewMap(&ebpf.MapSpec{Name: "ftnas_lease", Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("fence: create lease map: %w", err)
	}
	if err := f.set(0); err != nil {
		f.Close()
		return nil, err
	}
	for i, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name: "ftnas_fence", Type: ebpf.SchedCLS, License: "GPL", Instructions: instructions(f.m, i == 0),
		})
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("fence: load program: %w", err)
		}
		f.progs = append(f.progs, prog)
		l, err := link.AttachTCX(link.TCXOptions{Interface: ifc.Index, Program: prog, Attach: at})
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("fence: attach to %s (%v): %w", ifname, at, err)
		}
		f.links = append(f.links, l)
	}
	return f, nil
}

// monoNow is CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
func monoNow() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("fence: read the monotonic clock: %w", err)
	}
	return time.Duration(ts.Nano()), nil
}

func (f *Fence) set(deadline uint64) error {
	var v [16]byte
	binary.NativeEndian.PutUint64(v[0:], deadline)
	a4 := f.addr.As4()
	copy(v[8:12], a4[:]) // network order, compared as loaded from the packet
	if err := f.m.Put(uint32(0), v[:]); err != nil {
		return fmt.Errorf("fence: update lease of %v on %s: %w", f.addr, f.ifname, err)
	}
	return nil
}

// Renew lets traffic for the address pass until the wall-clock time until
// (converted to the monotonic clock now).
func (f *Fence) Renew(until time.Time) error {
	now, err := monoNow()
	if err != nil {
		return err
	}
	d := time.Until(until)
	if d <= 0 {
		return f.set(0)
	}
	return f.set(uint64(now + d))
}

// Expire ends the lease at once.
func (f *Fence) Expire() error { return f.set(0) }

// Close detaches the program and frees it (unpinning it first).
func (f *Fence) Close() error {
	var errs []error
	if f.pinDir != "" {
		errs = append(errs, Sweep(f.pinDir))
		f.pinDir = ""
	}
	errs = append(errs, f.closeFDs())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fence: close: %w", err)
	}
	return nil
}

// closeFDs drops the process's references: a pinned fence stays (as
// when the process is killed).
func (f *Fence) closeFDs() error {
	var errs []error
	for _, l := range f.links {
		errs = append(errs, l.Close())
	}
	f.links = nil
	for _, p := range f.progs {
		errs = append(errs, p.Close())
	}
	f.progs = nil
	if f.m != nil {
		errs = append(errs, f.m.Close())
	}
	return errors.Join(errs...)
}
