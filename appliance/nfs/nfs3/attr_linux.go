package nfs3

import (
	"ftnas/appliance/nfs/xdr"

	"golang.org/x/sys/unix"
)

// attrs is what the server knows of a file for fattr3.
type attrs struct {
	st     unix.Stat_t
	fileid uint64
	fsid   uint64
}

func ftype(mode uint32) uint32 {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return typeReg
	case unix.S_IFDIR:
		return typeDir
	case unix.S_IFBLK:
		return typeBlk
	case unix.S_IFCHR:
		return typeChr
	case unix.S_IFLNK:
		return typeLnk
	case unix.S_IFSOCK:
		return typeSock
	case unix.S_IFIFO:
		return typeFifo
	}
	return typeReg
}

// putFattr writes fattr3.
func putFattr(w *xdr.Writer, a *attrs) {
	st := &a.st
	w.Uint32(ftype(st.Mode))
	w.Uint32(st.Mode & 0o7777)
	w.Uint32(uint32(st.Nlink))
	w.Uint32(st.Uid)
	w.Uint32(st.Gid)
	w.Uint64(uint64(st.Size))
	w.Uint64(uint64(st.Blocks) * 512)
	w.Uint32(unix.Major(st.Rdev))
	w.Uint32(unix.Minor(st.Rdev))
	w.Uint64(a.fsid)
	w.Uint64(a.fileid)
	putTime(w, st.Atim)
	putTime(w, st.Mtim)
	putTime(w, st.Ctim)
}

func putTime(w *xdr.Writer, t unix.Timespec) {
	w.Uint32(uint32(t.Sec))
	w.Uint32(uint32(t.Nsec))
}

// putPostOp writes post_op_attr; a nil a is "no attributes".
func putPostOp(w *xdr.Writer, a *attrs) {
	if a == nil {
		w.Bool(false)
		return
	}
	w.Bool(true)
	putFattr(w, a)
}

// wcc is the pre-operation part of wcc_data.
type wcc struct {
	ok           bool
	size         uint64
	mtime, ctime unix.Timespec
}

func wccOf(a *attrs) wcc {
	if a == nil {
		return wcc{}
	}
	return wcc{ok: true, size: uint64(a.st.Size), mtime: a.st.Mtim, ctime: a.st.Ctim}
}

// putWcc writes wcc_data.
func putWcc(w *xdr.Writer, pre wcc, post *attrs) {
	w.Bool(pre.ok)
	if pre.ok {
		w.Uint64(pre.size)
		putTime(w, pre.mtime)
		putTime(w, pre.ctime)
	}
	putPostOp(w, post)
}

// timeHow is time_how.
const (
	dontChange    = 0
	setToServer   = 1
	setToClient   = 2
	maxTimeOfNsec = 999999999
)

// sattr is sattr3.
type sattr struct {
	mode, uid, gid *uint32
	size           *uint64
	atimeHow       uint32
	atime          unix.Timespec
	mtimeHow       uint32
	mtime          unix.Timespec
}

func getOptU32(r *xdr.Reader) *uint32 {
	if !r.Bool() {
		return nil
	}
	v := r.Uint32()
	return &v
}

func getSattr(r *xdr.Reader) (sattr, bool) {
	var s sattr
	s.mode = getOptU32(r)
	s.uid = getOptU32(r)
	s.gid = getOptU32(r)
	if r.Bool() {
		v := r.Uint64()
		s.size = &v
	}
	var ok bool
	if s.atimeHow, s.atime, ok = getSetTime(r); !ok {
		return s, false
	}
	if s.mtimeHow, s.mtime, ok = getSetTime(r); !ok {
		return s, false
	}
	return s, r.Err() == nil
}

func getSetTime(r *xdr.Reader) (uint32, unix.Timespec, bool) {
	how := r.Uint32()
	switch how {
	case dontChange, setToServer:
		return how, unix.Timespec{}, true
	case setToClient:
		sec, nsec := r.Uint32(), r.Uint32()
		if nsec > maxTimeOfNsec {
			return how, unix.Timespec{}, false
		}
		return how, unix.Timespec{Sec: int64(sec), Nsec: int64(nsec)}, true
	}
	return how, unix.Timespec{}, false
}
