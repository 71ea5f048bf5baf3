package changelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// notifyInitFlags makes the change-log group: notification class (it cannot
// block anyone), events identified by file handles of the directory, the
// entry name and the child (FAN_REPORT_DFID_NAME_TARGET = FID | DIR_FID |
// NAME | TARGET_FID, which FAN_RENAME needs for both names), non-blocking so
// the runtime poller drives it. Deliberately no FAN_UNLIMITED_QUEUE: a
// bounded queue overflows visibly (FAN_Q_OVERFLOW) and is answered by a
// rescan, where an unbounded one would grow kernel memory without limit.
const notifyInitFlags = unix.FAN_CLASS_NOTIF | unix.FAN_CLOEXEC | unix.FAN_NONBLOCK |
	unix.FAN_REPORT_DFID_NAME_TARGET

// notifyMask is what the change log listens to on the whole filesystem.
// FAN_RENAME (one event, both names) replaces FAN_MOVED_FROM/FAN_MOVED_TO.
const notifyMask = unix.FAN_CREATE | unix.FAN_DELETE | unix.FAN_RENAME |
	unix.FAN_ATTRIB | unix.FAN_MODIFY | unix.FAN_CLOSE_WRITE | unix.FAN_ONDIR

// gateInitFlags makes the back-pressure group: content class (permission
// events), classic descriptor reporting (FID groups cannot take permission
// events), thread IDs so the opener's blocked syscall can be inspected.
const gateInitFlags = unix.FAN_CLASS_CONTENT | unix.FAN_CLOEXEC | unix.FAN_NONBLOCK |
	unix.FAN_REPORT_TID

// gateEventFlags opens the descriptor the kernel hands the gate with each
// permission event: read-only, never updating atime.
const gateEventFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_LARGEFILE | unix.O_NOATIME

// readBufSize is one read of events: many events per syscall, and the unit of
// MODIFY coalescing.
const readBufSize = 64 << 10

// openGroup creates a fanotify group and marks the filesystem holding
// volume with mask. The descriptor is returned as an *os.File driven by the
// runtime poller (SetReadDeadline works on it).
func openGroup(initFlags, eventFlags uint, volume string, mask uint64) (*os.File, error) {
	fd, err := unix.FanotifyInit(initFlags, eventFlags)
	if err != nil {
		return nil, fmt.Errorf("fanotify_init(%#x): %w", initFlags, err)
	}
	err = unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, mask, unix.AT_FDCWD, volume)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fanotify_mark(FAN_MARK_FILESYSTEM %s, %#x): %w", volume, mask, err)
	}
	return os.NewFile(uintptr(fd), "fanotify:"+volume), nil
}

// respond answers a permission event. The kernel wants the descriptor it
// passed with the event.
func respond(f *os.File, fd int32, allow bool) error {
	var b [8]byte
	binary.LittleEndian.PutUint32(b[0:], uint32(fd))
	resp := uint32(unix.FAN_ALLOW)
	if !allow {
		resp = unix.FAN_DENY
	}
	binary.LittleEndian.PutUint32(b[4:], resp)
	_, err := f.Write(b[:])
	return err
}

// checkVolume verifies that volume is a directory on a filesystem other than
// the host's root filesystem: a filesystem mark covers the whole filesystem,
// so marking a directory of the root filesystem would watch (and, for the
// gate, gate) the whole host.
func checkVolume(volume string) error {
	var st, root unix.Stat_t
	if err := unix.Stat(volume, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return errors.New("not a directory")
	}
	if err := unix.Stat("/", &root); err != nil {
		return err
	}
	if st.Dev == root.Dev {
		return errors.New("is on the root filesystem (a filesystem mark would cover the whole host)")
	}
	return nil
}

// fdPath is the path the kernel has for an open descriptor, with ok false if
// the object has been unlinked.
func fdPath(fd int) (string, bool, error) {
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", false, err
	}
	if strings.HasSuffix(p, " (deleted)") {
		return "", false, nil
	}
	return p, true, nil
}
