package nfs3

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"ftnas/appliance/fileid"
	"ftnas/appliance/nfs/xdr"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	nfsrpc "github.com/willscott/go-nfs-client/nfs/rpc"
	"golang.org/x/sys/unix"
)

var media = Share{Name: "media", FSID: 7, Path: "shares/media"}

func TestReadWriteAndTree(t *testing.T) {
	n := newNode(t, media)
	tg := n.mount("/media", 0, 0)
	data := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB: several WRITEs
	if _, err := tg.Mkdir("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, tg, "dir/big", data)
	if got := readFile(t, tg, "dir/big"); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, want %d equal bytes", len(got), len(data))
	}
	onDisk, err := os.ReadFile(filepath.Join(n.vol, "shares/media/dir/big"))
	if err != nil || !bytes.Equal(onDisk, data) {
		t.Fatalf("file on the volume differs: %v", err)
	}
	ents, err := tg.ReadDirPlus("dir")
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "big" || ents[0].Size() != int64(len(data)) {
		t.Fatalf("ReadDirPlus = %v", ents)
	}
	// fileid is the stable ID, not the inode.
	attr, _, err := tg.Lookup("dir/big")
	if err != nil {
		t.Fatal(err)
	}
	st, err := fileid.ReadStamp(mustOpenDir(t, filepath.Join(n.vol, "shares/media/dir")), "big")
	if err != nil {
		t.Fatal(err)
	}
	if got := attr.(*nfsc.Fattr).Fileid; got != st.ID {
		t.Fatalf("fileid = %d, want stable ID %d", got, st.ID)
	}
	if err := tg.RmDir("dir"); nfsStatus(err) != uint32(ErrNotEmpty) {
		t.Fatalf("rmdir of a non-empty dir = %v, want NFS3ERR_NOTEMPTY", err)
	}
	if err := tg.Remove("dir/big"); err != nil {
		t.Fatal(err)
	}
	if err := tg.RmDir("dir"); err != nil {
		t.Fatal(err)
	}
}

func mustOpenDir(t *testing.T, p string) int {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

func TestHandleSurvivesRestartAndRename(t *testing.T) {
	n := newNode(t, media)
	tg := n.mount("/media", 0, 0)
	if _, err := tg.Mkdir("a", 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, tg, "a/f", []byte("the right bytes"))
	_, fh, err := tg.Lookup("a/f")
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Rename("a", "b"); err != nil {
		t.Fatal(err)
	}
	n.restart()
	tg = n.mount("/media", 0, 0)
	// The handle from before the rename and restart still reads the file.
	a, err := tg.GetAttr(fh)
	if err != nil {
		t.Fatalf("GETATTR with an old handle after rename+restart: %v", err)
	}
	if a.Size() != int64(len("the right bytes")) {
		t.Fatalf("size = %d", a.Size())
	}
	if got := readFH(t, tg, fh, 100); string(got) != "the right bytes" {
		t.Fatalf("READ with the old handle = %q", got)
	}
	// Deleted: stale, even when a new file takes the name.
	if err := tg.Remove("b/f"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, tg, "b/f", []byte("another file"))
	if _, err := tg.GetAttr(fh); nfsStatus(err) != uint32(ErrStale) {
		t.Fatalf("GETATTR of a deleted file's handle = %v, want NFS3ERR_STALE", err)
	}
	if got := readErr(t, tg, fh); got != uint32(ErrStale) {
		t.Fatalf("READ of a deleted file's handle = %d, want NFS3ERR_STALE", got)
	}
}

// readFH issues a raw READ.
func readFH(t *testing.T, tg *nfsc.Target, fh []byte, count uint32) []byte {
	t.Helper()
	res, err := rawRead(tg, fh, count)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func readErr(t *testing.T, tg *nfsc.Target, fh []byte) uint32 {
	_, err := rawRead(tg, fh, 10)
	return nfsStatus(err)
}

type rawReadArgs struct {
	nfsrpc.Header
	FH     []byte
	Offset uint64
	Count  uint32
}

func header(proc uint32) nfsrpc.Header {
	return nfsrpc.Header{Rpcvers: 2, Prog: Program, Vers: Version, Proc: proc,
		Cred: nfsrpc.NewAuthUnix("test", 0, 0).Auth(), Verf: nfsrpc.AuthNull}
}

func rawCall(tg *nfsc.Target, args any) (*xdr.Reader, error) {
	res, err := tg.Call(args)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(res)
	if err != nil {
		return nil, err
	}
	r := xdr.NewReader(b)
	if st := r.Uint32(); st != 0 {
		return r, nfsc.NFS3Error(st)
	}
	return r, nil
}

func rawRead(tg *nfsc.Target, fh []byte, count uint32) ([]byte, error) {
	r, err := rawCall(tg, &rawReadArgs{header(procRead), fh, 0, count})
	if err != nil {
		return nil, err
	}
	if r.Bool() {
		r.FixedOpaque(84)
	}
	r.Uint32() // count
	r.Bool()   // eof
	return r.Opaque(maxIO), r.Err()
}

func TestLinkAndErrors(t *testing.T) {
	n := newNode(t, media)
	tg := n.mount("/media", 0, 0)
	writeFile(t, tg, "f", []byte("x"))
	_, fh, err := tg.Lookup("f")
	if err != nil {
		t.Fatal(err)
	}
	_, root, err := tg.Lookup(".")
	if err != nil {
		t.Fatal(err)
	}
	type linkArgs struct {
		nfsrpc.Header
		File []byte
		Dir  []byte
		Name string
	}
	if _, err := rawCall(tg, &linkArgs{header(procLink), fh, root, "g"}); err != nil {
		t.Fatalf("LINK: %v", err)
	}
	var a, b os.FileInfo
	if a, err = os.Stat(filepath.Join(n.vol, "shares/media/f")); err != nil {
		t.Fatal(err)
	}
	if b, err = os.Stat(filepath.Join(n.vol, "shares/media/g")); err != nil || !os.SameFile(a, b) {
		t.Fatalf("LINK did not make a hard link: %v", err)
	}
	// The link has the same identity.
	_, gfh, err := tg.Lookup("g")
	if err != nil || !bytes.Equal(gfh, fh) {
		t.Fatalf("handle of the link %x, of the file %x (%v)", gfh, fh, err)
	}
	// Names that escape or are not names.
	for _, name := range []string{"..", "a/b", ""} {
		if _, err := rawCall(tg, &linkArgs{header(procLink), fh, root, name}); err == nil {
			t.Errorf("LINK to %q succeeded", name)
		}
	}
	// Garbage handles.
	if _, err := tg.GetAttr([]byte("garbage")); nfsStatus(err) != uint32(ErrBadHandle) {
		t.Fatalf("GETATTR(garbage) = %v, want BADHANDLE", err)
	}
	// ".." of the share root is the root.
	_, up, err := tg.Lookup("..")
	if err != nil || !bytes.Equal(up, root) {
		t.Fatalf("LOOKUP(..) at the share root = %x, %v; want the root %x", up, err, root)
	}
}

func TestPermissionsAndSquash(t *testing.T) {
	ro := Share{Name: "ro", FSID: 9, Path: "ro", ReadOnly: true}
	sq := Share{Name: "sq", FSID: 10, Path: "sq", RootSquash: true}
	only := Share{Name: "only", FSID: 11, Path: "only", Clients: []netip.Prefix{netip.MustParsePrefix("10.9.9.0/24")}}
	n := newNode(t, media, ro, sq, only)

	// Files made by a user belong to that user.
	tg := n.mount("/media", 1234, 5678)
	writeFile(t, tg, "mine", []byte("hi"))
	fi, err := os.Lstat(filepath.Join(n.vol, "shares/media/mine"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscallStat); st.Uid != 1234 || st.Gid != 5678 {
		t.Fatalf("owner %d:%d, want 1234:5678", st.Uid, st.Gid)
	}
	// Another user cannot write into a directory it has no rights on.
	if err := os.Mkdir(filepath.Join(n.vol, "shares/media/private"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Mkdir("private/x", 0o755); nfsStatus(err) != uint32(ErrAcces) {
		t.Fatalf("mkdir in another user's 0700 dir = %v, want NFS3ERR_ACCES", err)
	}
	// Read-only share.
	tro := n.mount("/ro", 0, 0)
	if _, err := tro.Mkdir("x", 0o755); nfsStatus(err) != uint32(ErrROFS) {
		t.Fatalf("mkdir on a read-only share = %v, want NFS3ERR_ROFS", err)
	}
	// Root is squashed to nobody.
	tsq := n.mount("/sq", 0, 0)
	writeFile(t, tsq, "r", nil)
	fi, err = os.Lstat(filepath.Join(n.vol, "sq/r"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscallStat); st.Uid != nobody {
		t.Fatalf("squashed root made a file owned by %d, want %d", st.Uid, nobody)
	}
	// A client outside the allow-list cannot mount.
	c, err := nfsrpc.DialTCP("tcp", n.addr, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := (&nfsc.Mount{Client: c}).Mount("/only", nfsrpc.NewAuthUnix("t", 0, 0).Auth()); err == nil {
		t.Fatal("a client outside the allow-list mounted /only")
	}
}

func TestSymlinkIsNotFollowedOutOfTheVolume(t *testing.T) {
	n := newNode(t, media)
	tg := n.mount("/media", 0, 0)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Someone with shell or SMB access plants a symlink to outside.
	if err := os.Symlink(outside, filepath.Join(n.vol, "shares/media/escape")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tg.Lookup("escape/secret"); err == nil {
		t.Fatal("LOOKUP through a symlink reached a file outside the volume")
	}
	if err := tg.Remove("escape/secret"); err == nil {
		t.Fatal("REMOVE through a symlink succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
		t.Fatalf("the file outside the volume is gone: %v", err)
	}
}

type createExclArgs struct {
	nfsrpc.Header
	Dir  []byte
	Name string
	How  uint32
	Verf [8]byte
}

func TestExclusiveCreateIsIdempotent(t *testing.T) {
	n := newNode(t, media)
	tg := n.mount("/media", 0, 0)
	_, root, err := tg.Lookup(".")
	if err != nil {
		t.Fatal(err)
	}
	verf := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	call := func(v [8]byte) ([]byte, error) {
		r, err := rawCall(tg, &createExclArgs{header(procCreate), root, "x", createExclusive, v})
		if err != nil {
			return nil, err
		}
		if !r.Bool() {
			return nil, errors.New("no handle in reply")
		}
		return r.Opaque(maxHandle), r.Err()
	}
	fh1, err := call(verf)
	if err != nil {
		t.Fatal(err)
	}
	// A retransmission with the same verifier succeeds with the same file.
	fh2, err := call(verf)
	if err != nil || !bytes.Equal(fh1, fh2) {
		t.Fatalf("retransmitted exclusive create: %x vs %x, %v", fh1, fh2, err)
	}
	// Another client's exclusive create of the same name fails.
	if _, err := call([8]byte{9, 9, 9, 9, 9, 9, 9, 9}); nfsStatus(err) != uint32(ErrExist) {
		t.Fatalf("exclusive create by another verifier = %v, want NFS3ERR_EXIST", err)
	}
}

type commitArgs struct {
	nfsrpc.Header
	FH     []byte
	Offset uint64
	Count  uint32
}

type writeArgs struct {
	nfsrpc.Header
	FH     []byte
	Offset uint64
	Count  uint32
	How    uint32
	Data   []byte
}

func TestWriteVerifierAndStability(t *testing.T) {
	n := newNode(t, media)
	tg := n.mount("/media", 0, 0)
	writeFile(t, tg, "f", nil)
	_, fh, err := tg.Lookup("f")
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []uint32{unstable, fileSync} {
		r, err := rawCall(tg, &writeArgs{header(procWrite), fh, 0, 3, how, []byte("abc")})
		if err != nil {
			t.Fatal(err)
		}
		// wcc_data: pre_op_attr then post_op_attr.
		if r.Bool() {
			r.FixedOpaque(24)
		}
		if r.Bool() {
			r.FixedOpaque(84)
		}
		count, committed, verf := r.Uint32(), r.Uint32(), r.FixedOpaque(8)
		if r.Err() != nil || count != 3 {
			t.Fatalf("WRITE reply: count %d, %v", count, r.Err())
		}
		if how == unstable && committed != unstable {
			t.Errorf("UNSTABLE write answered %d; the server must say what it did", committed)
		}
		if how == fileSync && committed != fileSync {
			t.Errorf("FILE_SYNC write answered %d", committed)
		}
		if want := n.srv.Verifier(); !bytes.Equal(verf, want[:]) {
			t.Errorf("verifier %x, want the server's %x", verf, want)
		}
	}
}

// TestDurableShareWaitsForNamespaceChanges: on a Durable share every
// namespace change, COMMIT and stable WRITE runs the hook before its
// reply; a failing hook makes COMMIT JUKEBOX but leaves a done namespace
// change answered OK; other shares never run it.
func TestDurableShareWaitsForNamespaceChanges(t *testing.T) {
	var (
		mu          sync.Mutex
		calls       []uint64
		fail        error
		pendingLeft int // answer ErrPending this many times first
	)
	hook := func(fsid uint64) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, fsid)
		if pendingLeft > 0 {
			pendingLeft--
			return fmt.Errorf("%w: standby slow", ErrPending)
		}
		return fail
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(calls) }
	synced := Share{Name: "synced", FSID: 9, Path: "shares/synced", Durable: true}
	n := newNodeWith(t, hook, synced, media)

	tg := n.mount("/media", 0, 0)
	writeFile(t, tg, "plain", []byte("x"))
	if _, err := tg.Mkdir("d", 0o755); err != nil {
		t.Fatal(err)
	}
	if c := count(); c != 0 {
		t.Fatalf("the hook ran %d times for a share that is not Durable", c)
	}

	tg = n.mount("/synced", 0, 0)
	for _, step := range []struct {
		name string
		do   func() error
	}{
		{"create", func() error {
			f, err := tg.OpenFile("a", 0o644)
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"mkdir", func() error { _, err := tg.Mkdir("dir", 0o755); return err }},
		{"rename", func() error { return tg.Rename("a", "dir/b") }},
		{"remove", func() error { return tg.Remove("dir/b") }},
		{"rmdir", func() error { return tg.RmDir("dir") }},
	} {
		before := count()
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if count() <= before {
			t.Errorf("%s on a Durable share did not wait for the hook", step.name)
		}
	}
	// A REMOVE answered NOENT tells the namespace as it is: it waits
	// for the hook too (the name may be gone by a change not yet on the
	// standby).
	before := count()
	if err := tg.Remove("never-there"); err == nil {
		t.Fatal("removing a missing name succeeded")
	}
	if count() <= before {
		t.Error("a REMOVE answered NOENT on a Durable share did not wait for the hook")
	}
	mu.Lock()
	for _, fsid := range calls {
		if fsid != synced.FSID {
			t.Errorf("hook called with fsid %d, want %d", fsid, synced.FSID)
		}
	}
	// The change is pending twice (the standby slow): the CREATE's reply
	// waits, calling the hook again, until it is safe.
	pendingLeft = 2
	mu.Unlock()
	before = count()
	f, err := tg.OpenFile("waited", 0o644)
	if err != nil {
		t.Fatalf("create with a pending hook: %v", err)
	}
	f.Close()
	mu.Lock()
	left := pendingLeft
	mu.Unlock()
	if c := count() - before; c < 3 || left != 0 {
		t.Errorf("create with a hook pending twice: %d hook calls (pending left %d), want at least 3", c, left)
	}
	mu.Lock()
	fail = errors.New("this node no longer serves")
	mu.Unlock()

	// The node stopped serving: a CREATE is made here but answered
	// JUKEBOX (the client asks again where the service is now) ...
	before = count()
	if _, err := tg.Create("late", 0o644); err == nil {
		t.Fatal("create with a failed hook answered OK")
	}
	if count() <= before {
		t.Error("create with a failing hook did not run it")
	}
	if _, err := os.Lstat(filepath.Join(n.vol, "shares/synced/late")); err != nil {
		t.Errorf("the create answered JUKEBOX was not made here: %v", err)
	}
	// ... and so is a COMMIT.
	_, fh, err := tg.Lookup("late")
	if err != nil {
		t.Fatal(err)
	}
	res, err := tg.Call(&commitArgs{header(procCommit), fh, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res)
	if st := xdr.NewReader(b).Uint32(); st != uint32(ErrJukebox) {
		t.Errorf("COMMIT with a failing hook: status %d, want JUKEBOX (%d)", st, ErrJukebox)
	}
}

// writeVerf sends one WRITE of data at 0 with how and returns the reply's
// committed level and verifier.
func writeVerf(t *testing.T, tg *nfsc.Target, fh []byte, how uint32, data []byte) (uint32, []byte) {
	t.Helper()
	r, err := rawCall(tg, &writeArgs{header(procWrite), fh, 0, uint32(len(data)), how, data})
	if err != nil {
		t.Fatal(err)
	}
	if r.Bool() {
		r.FixedOpaque(24)
	}
	if r.Bool() {
		r.FixedOpaque(84)
	}
	count, committed, verf := r.Uint32(), r.Uint32(), r.FixedOpaque(8)
	if r.Err() != nil || count != uint32(len(data)) {
		t.Fatalf("WRITE reply: count %d, %v", count, r.Err())
	}
	return committed, verf
}

// TestSetVerifier: WRITE and its verifier follow SetVerifier at once.
func TestSetVerifier(t *testing.T) {
	n := newNode(t, media)
	tg := n.mount("/media", 0, 0)
	writeFile(t, tg, "f", nil)
	_, fh, err := tg.Lookup("f")
	if err != nil {
		t.Fatal(err)
	}
	_, v1 := writeVerf(t, tg, fh, unstable, []byte("abc"))
	if want := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}; !bytes.Equal(v1, want[:]) {
		t.Fatalf("verifier %x, want the initial %x", v1, want)
	}
	next := [8]byte{9, 9, 9, 9, 9, 9, 9, 9}
	n.srv.SetVerifier(next)
	if _, v2 := writeVerf(t, tg, fh, unstable, []byte("abc")); !bytes.Equal(v2, next[:]) {
		t.Fatalf("verifier after SetVerifier %x, want %x", v2, next)
	}
}

// replaceLikeApplier renames a new copy of rel, with rel's Stamp and the
// given contents, over it: what the standby's journal applier does with a
// file the master changed.
func replaceLikeApplier(t *testing.T, vol, rel string, data []byte) {
	t.Helper()
	dir, name := filepath.Split(filepath.Join(vol, rel))
	st, err := fileid.ReadStamp(mustOpenDir(t, dir), name)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".ftnas-apply.test")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(tmp, fileid.XattrName, st.MarshalBinary(), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// TestReplacedFileKeepsItsHandle: a file read through the descriptor cache
// and then replaced by a new copy carrying its identity (the applier, while
// this node was a standby: chaos seed 15 saw NFS3ERR_STALE right after a
// takeover for a file the node had served before a failback) is read and
// written through the same handle, with the new contents; a removed file's
// handle is stale.
func TestReplacedFileKeepsItsHandle(t *testing.T) {
	n := newNode(t, media)
	tg := n.mount("/media", 0, 0)
	writeFile(t, tg, "f", []byte("old contents"))
	if got := readFile(t, tg, "f"); string(got) != "old contents" {
		t.Fatalf("read %q", got)
	}
	_, fh, err := tg.Lookup("f")
	if err != nil {
		t.Fatal(err)
	}
	replaceLikeApplier(t, n.vol, "shares/media/f", []byte("new contents"))
	got, err := rawRead(tg, fh, 100)
	if err != nil || string(got) != "new contents" {
		t.Fatalf("READ through the handle after the replacement: %q, %v; want the new contents", got, err)
	}
	writeVerf(t, tg, fh, fileSync, []byte("NEW"))
	onDisk, err := os.ReadFile(filepath.Join(n.vol, "shares/media/f"))
	if err != nil || string(onDisk) != "NEW contents" {
		t.Fatalf("file after a WRITE through the old handle: %q, %v", onDisk, err)
	}
	if err := os.Remove(filepath.Join(n.vol, "shares/media/f")); err != nil {
		t.Fatal(err)
	}
	if _, err := rawCall(tg, &writeArgs{header(procWrite), fh, 0, 1, unstable, []byte("x")}); nfsStatus(err) != uint32(ErrStale) {
		t.Fatalf("WRITE to a removed file: %v, want NFS3ERR_STALE", err)
	}
	if _, err := rawRead(tg, fh, 100); nfsStatus(err) != uint32(ErrStale) {
		t.Fatalf("READ of a removed file: %v, want NFS3ERR_STALE", err)
	}
}
