package capture

import (
	"fmt"
	"os"
	"strconv"

	"ftnas/kernel/changelog"

	"golang.org/x/sys/unix"
)

// attachHints has the translator use the write hints of cfg.Hints: a
// change of a thread of cfg.HintPid counts as the hinting server's, and a
// change the translator waits for wakes the loop when it ends.
func (c *Capture) attachHints() {
	pid := c.cfg.HintPid
	if pid == 0 {
		pid = os.Getpid()
	}
	c.tr.hints = newHintState(c.cfg.Hints, func(tid int) bool { return ownThread(pid, tid) })
	c.hintsGen = c.cfg.Hints.attach(func() {
		select {
		case c.changes <- changelog.Change{}: // a wake-up
		default: // the loop has changes to read anyway
		}
	})
}

// ownThread reports whether thread tid (fanotify reports threads) belongs
// to process pid.
func ownThread(pid, tid int) bool {
	if tid == pid {
		return true
	}
	var st unix.Stat_t
	return unix.Stat("/proc/"+strconv.Itoa(pid)+"/task/"+strconv.Itoa(tid), &st) == nil
}

// InodeTimes is Inode with the file's access and modification times.
func (v *fsVolume) InodeTimes(fid string) (Obj, int64, int64, bool, error) {
	fd, ok, err := v.open(fid, unix.O_PATH)
	if err != nil || !ok {
		return Obj{}, 0, 0, false, err
	}
	defer unix.Close(fd)
	var sb unix.Stat_t
	if err := unix.Fstat(fd, &sb); err != nil {
		return Obj{}, 0, 0, false, fmt.Errorf("fstat: %w", err)
	}
	if sb.Nlink == 0 {
		return Obj{}, 0, 0, false, nil
	}
	o := objOf(&sb)
	o.FID = fid
	return o, sb.Atim.Nano(), sb.Mtim.Nano(), true, nil
}
