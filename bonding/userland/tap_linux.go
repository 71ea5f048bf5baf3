package userland

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openTAP creates TAP device name with a virtio net header on every frame
// and checksum and TCP segmentation offload on, so the host stack hands it
// (and takes from it) whole TSO segments with partial checksums. Call it
// inside the namespace the device belongs to. The device lives as long as
// the returned file is open.
func openTAP(name string) (*os.File, error) {
	if len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("tap %q: name longer than %d bytes", name, unix.IFNAMSIZ-1)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tap %s: open /dev/net/tun: %w", name, err)
	}
	var ifr [unix.IFNAMSIZ + 64]byte // struct ifreq
	copy(ifr[:], name)
	*(*uint16)(unsafe.Pointer(&ifr[unix.IFNAMSIZ])) = unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&ifr[0]))); errno != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: TUNSETIFF: %w", name, errno)
	}
	offload := unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6 | unix.TUN_F_TSO_ECN
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETOFFLOAD, uintptr(offload)); errno != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: TUNSETOFFLOAD: %w", name, errno)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: set non-blocking: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "tap:"+name), nil // non-blocking: served by the runtime poller
}
