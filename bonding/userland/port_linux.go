package userland

import (
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"ftnas/bonding/internal/nsexec"
)

// frameBufLen holds the largest frame either side can hand over: a 64 KiB
// TSO/GRO segment plus the virtio header and the Ethernet header.
const frameBufLen = VnetHdrLen + 65536 + 256

// mmsghdr is struct mmsghdr for recvmmsg/sendmmsg.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// port is one member NIC: an AF_PACKET socket bound to it with a virtio
// header on every frame. Its receive state belongs to its own goroutine,
// its send batch to the TAP goroutine.
type port struct {
	name   string
	index  int
	conn   *packet.Conn
	rc     syscall.RawConn
	member atomic.Bool
	rxSeen atomic.Bool
	probe  atomic.Uint64 // probeKey of the last SendProbe through it
	probed atomic.Bool   // its answer arrived since the last ProbeAnswers
	dropFD int           // tcx ingress drop link, -1 when not a member
	done   chan struct{}
	closed atomic.Bool

	ethtool [2]uint32 // struct ethtool_value for linkState, on the heap with the port

	rxFrames, rxBytes, rxDropped, answered atomic.Uint64
	txFrames, txBytes, txDropped           atomic.Uint64

	// receive side (port goroutine)
	rxBufs  [][]byte
	rxIov   []unix.Iovec
	rxMsgs  []mmsghdr
	rxN     int
	rxErr   error
	recvFn  func(fd uintptr) bool
	toTap   [][]byte
	tapOff  int
	tapErrs atomic.Uint64
	tapFn   func(fd uintptr) bool
	reply   []byte

	// send side (TAP goroutine)
	txIov  []unix.Iovec
	txMsgs []mmsghdr
	txN    int
	txOff  int
	sendFn func(fd uintptr) bool
}

// openPort opens an AF_PACKET socket on interface ifi inside ns.
func openPort(ns netns.NsHandle, ifi *net.Interface, batch int) (*port, error) {
	var c *packet.Conn
	err := nsexec.Do(ns, func() error {
		var err error
		c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open packet socket on %s: %w", ifi.Name, err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("packet socket on %s: %w", ifi.Name, err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for _, o := range []struct {
			level, opt, val int
			name            string
		}{
			{unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1, "PACKET_VNET_HDR"},
			{unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING"},
			{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8 << 20, "SO_RCVBUFFORCE"},
			{unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4 << 20, "SO_SNDBUFFORCE"},
		} {
			if err := unix.SetsockoptInt(int(fd), o.level, o.opt, o.val); err != nil {
				serr = fmt.Errorf("setsockopt %s: %w", o.name, err)
				return
			}
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("packet socket on %s: %w", ifi.Name, err)
	}
	p := &port{name: ifi.Name, index: ifi.Index, conn: c, rc: rc, dropFD: -1, done: make(chan struct{})}
	p.rxBufs = make([][]byte, batch)
	p.rxIov = make([]unix.Iovec, batch)
	p.rxMsgs = make([]mmsghdr, batch)
	p.txIov = make([]unix.Iovec, batch)
	p.txMsgs = make([]mmsghdr, batch)
	p.toTap = make([][]byte, 0, batch)
	mem := make([]byte, batch*frameBufLen)
	for i := range batch {
		p.rxBufs[i] = mem[i*frameBufLen : (i+1)*frameBufLen : (i+1)*frameBufLen]
		p.rxIov[i].Base = &p.rxBufs[i][0]
		p.rxIov[i].SetLen(frameBufLen)
		p.rxMsgs[i].hdr.Iov = &p.rxIov[i]
		p.rxMsgs[i].hdr.SetIovlen(1)
		p.txMsgs[i].hdr.Iov = &p.txIov[i]
		p.txMsgs[i].hdr.SetIovlen(1)
	}
	p.recvFn = p.recv
	p.sendFn = p.send
	p.tapFn = p.writeTap
	return p, nil
}

// recv is the RawConn.Read callback: one recvmmsg of up to a batch.
func (p *port) recv(fd uintptr) bool {
	for i := range p.rxMsgs {
		p.rxMsgs[i].n = 0
		p.rxMsgs[i].hdr.Flags = 0
	}
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&p.rxMsgs[0])), uintptr(len(p.rxMsgs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			p.rxN, p.rxErr = int(n), nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			p.rxN, p.rxErr = 0, e
			return true
		}
	}
}

// readBatch waits for frames and receives a batch of them.
func (p *port) readBatch() (int, error) {
	if err := p.rc.Read(p.recvFn); err != nil {
		return 0, err
	}
	return p.rxN, p.rxErr
}

// queue adds a frame (with its virtio header) to the send batch. The frame
// must stay untouched until flush.
func (p *port) queue(b []byte) {
	p.txIov[p.txN].Base = &b[0]
	p.txIov[p.txN].SetLen(len(b))
	p.txN++
	p.txBytes.Add(uint64(len(b) - VnetHdrLen))
}

// send is the RawConn.Write callback: sendmmsg until the batch is out. A
// frame the kernel refuses (link down, queue full) is dropped and counted.
func (p *port) send(fd uintptr) bool {
	for p.txOff < p.txN {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&p.txMsgs[p.txOff])), uintptr(p.txN-p.txOff), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			p.txOff += int(n)
			p.txFrames.Add(uint64(n))
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			p.txDropped.Add(1)
			p.txOff++
		}
	}
	return true
}

// flush sends the queued batch.
func (p *port) flush() {
	p.txOff = 0
	if err := p.rc.Write(p.sendFn); err != nil {
		p.txDropped.Add(uint64(p.txN - p.txOff))
	}
	p.txN = 0
}

// writeTap is the TAP RawConn.Write callback for this port's delivered
// frames: one write per frame (a TAP takes one frame per write).
func (p *port) writeTap(fd uintptr) bool {
	for p.tapOff < len(p.toTap) {
		_, err := unix.Write(int(fd), p.toTap[p.tapOff])
		switch err {
		case nil:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			p.tapErrs.Add(1)
		}
		p.tapOff++
	}
	return true
}

// sendControl sends one frame (ARP probe or reply), prefixing the zero
// virtio header.
func (p *port) sendControl(frame []byte) error {
	var hdr [VnetHdrLen]byte
	b := append(hdr[:], frame...)
	_, err := p.conn.WriteTo(b, &packet.Addr{HardwareAddr: net.HardwareAddr(frame[0:6])})
	if err != nil {
		return fmt.Errorf("send on %s: %w", p.name, err)
	}
	return nil
}

func (p *port) close() error {
	p.closed.Store(true)
	err := p.conn.Close()
	<-p.done
	if p.dropFD >= 0 {
		unix.Close(p.dropFD)
		p.dropFD = -1
	}
	return err
}

// linkState reads the member's administrative state (SIOCGIFFLAGS) and its
// carrier (ETHTOOL_GLINK, the MII link state) straight from the driver
// through the port's socket. Netlink notifications of carrier changes can
// lag by up to a second (the kernel's linkwatch batches non-urgent
// events), so the detector polls this as well. ok is false when the driver
// cannot say.
func (p *port) linkState() (up, ok bool) {
	var ifr [40]byte // struct ifreq
	copy(ifr[:unix.IFNAMSIZ-1], p.name)
	ev := &p.ethtool
	var flags uint16
	var glinkErr, flagsErr unix.Errno
	err := p.rc.Control(func(fd uintptr) {
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
			flagsErr = e
			return
		}
		flags = *(*uint16)(unsafe.Pointer(&ifr[unix.IFNAMSIZ]))
		ev[0], ev[1] = unix.ETHTOOL_GLINK, 0
		*(*uintptr)(unsafe.Pointer(&ifr[unix.IFNAMSIZ])) = uintptr(unsafe.Pointer(ev))
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
			glinkErr = e
		}
	})
	if err != nil || flagsErr != 0 || glinkErr != 0 {
		return false, false
	}
	return flags&unix.IFF_UP != 0 && ev[1] != 0, true
}
