package qemu

import (
	"fmt"
	"strings"
	"time"
)

// Options describes a VM.
type Options struct {
	// Binary is the qemu executable; "" means qemu-system-x86_64.
	Binary string
	// Kernel and Initrd are booted directly (-kernel/-initrd).
	Kernel string
	Initrd string
	// Firmware, when set, is a UEFI firmware code image (OVMF_CODE)
	// mapped read-only as the first pflash device; without Kernel the
	// firmware boots from the disks. FirmwareVars is the writable
	// variable store (a per-VM copy of OVMF_VARS), required with it.
	Firmware     string
	FirmwareVars string
	// Append is added to the kernel command line after
	// "console=ttyS0 panic=-1 quiet no_timer_check" (a later parameter wins, so
	// "loglevel=7" here shows kernel messages again).
	Append string
	// Disks are image files attached as virtio-blk disks in order
	// (vda, vdb, ...), with serial numbers disk0, disk1, ... and qdev ids
	// disk0, ... (for QMP device_del). Files ending in .qcow2 are qcow2,
	// others raw.
	Disks []string
	// Blkdebug attaches the disks it names (by index in Disks) through
	// qemu's blkdebug driver with that config file (BlkdebugConfig), so
	// the host can make their I/O fail (VM.BreakDisk). Such a disk's
	// errors are reported to the guest (werror/rerror=report) and its
	// device offers no write-zeroes: the zero write that switches
	// BlkdebugConfig's rules on only ever comes from the host.
	Blkdebug map[int]string
	// NICs are attached as virtio-net devices in order.
	NICs []NIC
	// Memory in MiB; 0 means 512.
	Memory int
	// CPUs; 0 means 1.
	CPUs int
	// Timeout bounds the VM's life: qemu is killed after it. 0 means 60 s.
	Timeout time.Duration
	// QMP, when set, adds a QMP socket (VM.QMP).
	QMP bool
	// Extra arguments for qemu, appended last.
	Extra []string
}

// NIC is one virtio-net interface.
type NIC struct {
	// Netdev is a -netdev backend without its id, e.g. "user",
	// "socket,listen=127.0.0.1:5555" or
	// "tap,ifname=tap0,script=no,downscript=no".
	Netdev string
	// MAC, e.g. 52:54:00:12:34:01; "" lets qemu pick.
	MAC string
}

const (
	defaultMemory  = 512
	defaultTimeout = 60 * time.Second
	// no_timer_check: under TCG on a loaded host the kernel's IO-APIC
	// timer check can fail and panic ("IO-APIC + timer doesn't work").
	baseAppend = "console=ttyS0 panic=-1 quiet no_timer_check"
)

func (o Options) binary() string {
	if o.Binary != "" {
		return o.Binary
	}
	return "qemu-system-x86_64"
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return defaultTimeout
}

// Args returns qemu's arguments (without the binary) for o; qmpSocket is
// the QMP socket path, used when o.QMP is set.
func Args(o Options, qmpSocket string) ([]string, error) {
	if o.Kernel == "" && o.Firmware == "" {
		return nil, fmt.Errorf("qemu: options: no Kernel and no Firmware")
	}
	if o.Kernel == "" && (o.Initrd != "" || o.Append != "") {
		return nil, fmt.Errorf("qemu: options: Initrd or Append without Kernel")
	}
	if o.Firmware != "" && (o.FirmwareVars == "" || strings.Contains(o.Firmware+o.FirmwareVars, ",")) {
		return nil, fmt.Errorf("qemu: options: Firmware %q needs a FirmwareVars file (paths without commas), got %q", o.Firmware, o.FirmwareVars)
	}
	mem := o.Memory
	if mem == 0 {
		mem = defaultMemory
	}
	if mem < 64 {
		return nil, fmt.Errorf("qemu: options: Memory %d MiB is too small", mem)
	}
	cpus := o.CPUs
	if cpus == 0 {
		cpus = 1
	}
	if cpus < 0 {
		return nil, fmt.Errorf("qemu: options: CPUs %d", cpus)
	}
	args := []string{
		"-machine", "pc,accel=tcg",
		"-m", fmt.Sprint(mem),
		"-smp", fmt.Sprint(cpus),
		"-nodefaults", "-no-user-config",
		"-display", "none",
		"-serial", "stdio",
		"-monitor", "none",
		"-no-reboot",
	}
	if o.Firmware != "" {
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+o.Firmware,
			"-drive", "if=pflash,format=raw,unit=1,file="+o.FirmwareVars)
	}
	if o.Kernel != "" {
		args = append(args, "-kernel", o.Kernel)
		if o.Initrd != "" {
			args = append(args, "-initrd", o.Initrd)
		}
		appendLine := baseAppend
		if a := strings.TrimSpace(o.Append); a != "" {
			appendLine += " " + a
		}
		args = append(args, "-append", appendLine)
	}
	for i, d := range o.Disks {
		if d == "" || strings.Contains(d, ",") {
			return nil, fmt.Errorf("qemu: options: disk %d: bad path %q (empty or with a comma)", i, d)
		}
		format := "raw"
		if strings.HasSuffix(d, ".qcow2") {
			format = "qcow2"
		}
		id := fmt.Sprintf("disk%d", i)
		file, drive, dev := d, "", ""
		if cfg, ok := o.Blkdebug[i]; ok {
			if cfg == "" || strings.ContainsAny(cfg+d, ",:") {
				return nil, fmt.Errorf("qemu: options: disk %d: blkdebug config %q or image %q empty or with a comma or colon", i, cfg, d)
			}
			file, drive, dev = "blkdebug:"+cfg+":"+d, ",werror=report,rerror=report", ",write-zeroes=off"
		}
		args = append(args,
			"-drive", fmt.Sprintf("file=%s,format=%s,if=none,id=drive-%s,cache=unsafe%s", file, format, id, drive),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=drive-%s,id=%s,serial=%s%s", id, id, id, dev))
	}
	for i := range o.Blkdebug {
		if i < 0 || i >= len(o.Disks) {
			return nil, fmt.Errorf("qemu: options: blkdebug for disk %d of %d", i, len(o.Disks))
		}
	}
	for i, n := range o.NICs {
		if n.Netdev == "" || strings.Contains(n.Netdev, ",id=") || strings.HasPrefix(n.Netdev, "id=") {
			return nil, fmt.Errorf("qemu: options: NIC %d: bad netdev %q (empty or with an id)", i, n.Netdev)
		}
		id := fmt.Sprintf("net%d", i)
		dev := fmt.Sprintf("virtio-net-pci,netdev=%s,id=%s", id, id)
		if n.MAC != "" {
			dev += ",mac=" + n.MAC
		}
		args = append(args, "-netdev", n.Netdev+",id="+id, "-device", dev)
	}
	if o.QMP {
		if qmpSocket == "" || strings.Contains(qmpSocket, ",") {
			return nil, fmt.Errorf("qemu: options: bad QMP socket path %q", qmpSocket)
		}
		args = append(args, "-qmp", "unix:"+qmpSocket+",server=on,wait=off")
	}
	return append(args, o.Extra...), nil
}
