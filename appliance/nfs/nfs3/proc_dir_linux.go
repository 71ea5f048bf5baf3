package nfs3

import (
	"encoding/binary"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// dirent is one entry of getdents64.
type dirent struct {
	name string
	off  int64 // cookie: where the entry after this one starts
}

// parseDirents decodes a getdents64 buffer.
func parseDirents(buf []byte, out []dirent) []dirent {
	for len(buf) >= 19 {
		reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
		if reclen < 19 || reclen > len(buf) {
			break
		}
		off := int64(binary.NativeEndian.Uint64(buf[8:16]))
		nameb := buf[19:reclen]
		for i, c := range nameb {
			if c == 0 {
				nameb = nameb[:i]
				break
			}
		}
		out = append(out, dirent{name: string(nameb), off: off})
		buf = buf[reclen:]
	}
	return out
}

// listDir reads entries of the directory fd starting at cookie, calling emit
// for each until emit returns false. It reports whether the end was reached.
func listDir(fd int, cookie uint64, emit func(dirent) bool) (eof bool, err error) {
	if _, err := unix.Seek(fd, int64(cookie), 0); err != nil {
		return false, err
	}
	buf := make([]byte, 32<<10)
	var ents []dirent
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, err
		}
		if n == 0 {
			return true, nil
		}
		ents = parseDirents(buf[:n], ents[:0])
		for _, e := range ents {
			if !emit(e) {
				return false, nil
			}
		}
	}
}

// readdirStart resolves and opens the directory of READDIR(PLUS) as the
// caller, who needs read permission on it.
func (k *call) readdirStart() (*fileid.Ref, int, *attrs, Status) {
	ref, st := k.handle()
	if st != OK {
		return nil, -1, nil, st
	}
	var fd int
	err := asCaller(k.cred, func() error {
		var err error
		fd, err = unix.Openat(ref.Dir, ref.Name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		a, _ := k.stat(ref)
		ref.Close()
		if err == unix.ENOTDIR || err == unix.ELOOP {
			return nil, -1, a, ErrNotDir
		}
		return nil, -1, a, statusOf(err)
	}
	return ref, fd, k.fstat(fd, ref.Stamp), OK
}

func xdrLen(n int) int { return (n + 3) &^ 3 }

func (k *call) readdir() Status     { return k.listing(false) }
func (k *call) readdirplus() Status { return k.listing(true) }

// listing answers READDIR and READDIRPLUS.
func (k *call) listing(plus bool) Status {
	// The handle is read inside readdirStart; the rest follows it.
	ref, fd, dirAttrs, st := k.readdirStart()
	cookie := k.r.Uint64()
	_ = k.r.FixedOpaque(8) // cookieverf: directory offsets are stable here
	dircount := k.r.Uint32()
	maxcount := dircount
	if plus {
		maxcount = k.r.Uint32()
	}
	k.args()
	if st != OK {
		k.w.Uint32(uint32(st))
		putPostOp(k.w, dirAttrs)
		return st
	}
	defer ref.Close()
	defer unix.Close(fd)
	maxcount = min(maxcount, maxDirReply)
	start := k.w.Len()
	k.w.Uint32(uint32(OK))
	putPostOp(k.w, dirAttrs)
	k.w.FixedOpaque(make([]byte, 8))
	// Room for the list end and eof.
	limit := start + int(maxcount) - 8
	used := 0 // dircount accounting for READDIRPLUS
	entries := 0
	atRoot := ref.Rel == k.share.Path || (k.share.Path == "." && ref.Rel == ".")
	fresh := false // an entry got its identity now: synced once, before the reply
	eof, err := listDir(fd, cookie, func(e dirent) bool {
		var st fileid.Stamp
		var err error
		switch {
		case e.name == "." || (e.name == ".." && atRoot):
			// Clients (go-nfs-client among them) expect "." and "..";
			// ".." of a share's root is the root itself.
			st = ref.Stamp
		case e.name == "..":
			st, err = fileid.ReadStamp(ref.Dir, ".")
		default:
			var now bool
			st, now, err = k.s.tree.StampAtFresh(fd, ref.Stamp, e.name)
			fresh = fresh || now
		}
		if err != nil {
			// Gone between getdents and now, or unreadable: skip it.
			return true
		}
		size := 4 + 8 + 4 + xdrLen(len(e.name)) + 8
		if plus {
			size += 4 + 84 + 4 + 4 + xdrLen(fileid.HandleLen)
			if dircount > 0 && used+8+4+xdrLen(len(e.name))+8 > int(dircount) {
				return false
			}
		}
		if k.w.Len()+size > limit {
			return false
		}
		used += 8 + 4 + xdrLen(len(e.name)) + 8
		k.w.Bool(true)
		k.w.Uint64(st.ID)
		k.w.String(e.name)
		k.w.Uint64(uint64(e.off))
		if plus {
			if e.name == ".." && atRoot {
				putPostOp(k.w, dirAttrs)
			} else {
				putPostOp(k.w, k.statAt(fd, e.name, st))
			}
			k.w.Bool(true)
			k.putHandle(st)
		}
		entries++
		return true
	})
	if err != nil {
		k.w.Truncate(start)
		st := statusOf(err)
		if err == unix.EINVAL {
			st = ErrBadCookie
		}
		k.w.Uint32(uint32(st))
		putPostOp(k.w, dirAttrs)
		return st
	}
	if entries == 0 && !eof {
		k.w.Truncate(start)
		k.w.Uint32(uint32(ErrTooSmall))
		putPostOp(k.w, dirAttrs)
		return ErrTooSmall
	}
	if fresh {
		// The identities handed out must survive a power cut (see
		// fileid.StampAtSync); one sync of the file system covers them.
		if err := unix.Syncfs(fd); err != nil {
			k.w.Truncate(start)
			k.w.Uint32(uint32(ErrIO))
			putPostOp(k.w, dirAttrs)
			return ErrIO
		}
	}
	k.w.Bool(false)
	k.w.Bool(eof)
	return OK
}
