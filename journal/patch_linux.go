package journal

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"ftnas/appliance/fileid"

	"golang.org/x/sys/unix"
)

// In-place patches. A file whose batch wrote at most patchMax bytes, all in
// known ranges and not only beyond its end here (the 64 KiB overwrites of
// a database or a VM image; appends are copied, see appendsOnly), is not
// copied: a reflink clone of a large file costs with every extent it has
// (random overwrites leave thousands), and dropping the old copy when the
// new one is renamed over it costs as much again, in the clone, the rename
// and the transaction commit that runs their reference updates (perf:
// two thirds of the standby's CPU in the replicate benchmark's overwrites).
// Instead the fetched ranges, size and metadata are kept in memory (a
// patch) until every fetch of the batch's chunk has succeeded, written to
// a redo log next to the position file and made durable (fdatasync), and
// only then written into the file itself. So no file is left half-patched:
//
//   - a fetch that fails (the master died) leaves the file as it was;
//   - a crash while files are patched leaves the redo log, which the next
//     FSApplier replays (NewFSApplier) before anything else, bringing every
//     file it names to its patched state, as the clone's rename would have.
//
// The log's segments name the position they follow (the last committed
// one). A segment whose position is not the committed one is stale (its
// batch was committed, so its patches are durable and later batches may
// have changed the files since) and is never replayed; nor is anything
// after a torn or foreign segment. Segments are appended until the batch
// commits, so a batch retried after an error keeps the patches its failed
// attempt applied in the log; after a commit the next segment is written
// at the start again. A batch that applies records in place after patching
// (a prune after deferred fetches) first makes the patches durable and
// clears the log (settlePatches), so a replay never rolls back a later
// change.
//
// Replaying a segment after a crash gives each file the master's state at
// its fetch, and the records after the committed position are applied
// again anyway (refetching those files); replay matters when this node must
// serve before that, with the master gone.

// patchMax bounds the bytes of a file's ranges patched in place, and
// patchChunkMax the bytes of all the patches a chunk of files holds in
// memory (FSApplier.patchHeld); beyond it, files are copied as before.
const (
	patchMax      = 1 << 20
	patchChunkMax = 64 << 20
)

// sink is where a file's fetched contents and metadata go: a working
// copy's descriptor (fdSink), or a patch kept in memory.
type sink interface {
	// writeAt writes data at off. A sink that keeps data (not a copy of
	// it) until later says so with keeps.
	writeAt(data []byte, off uint64) error
	keeps() bool
	// finish cuts the contents to attr.Size and gives them the master's
	// metadata.
	finish(attr Attr, xattrs []Xattr) error
}

// fdSink writes into a descriptor.
type fdSink int

func (s fdSink) writeAt(data []byte, off uint64) error { return writeAt(int(s), data, off) }

func (fdSink) keeps() bool { return false }

func (s fdSink) finish(attr Attr, xattrs []Xattr) error {
	if err := unix.Ftruncate(int(s), int64(attr.Size)); err != nil {
		return fmt.Errorf("truncate to %d: %w", attr.Size, err)
	}
	return setMeta(int(s), attr, xattrs)
}

// patch is a file's new ranges, size and metadata, to be written in place.
type patch struct {
	file   fileid.Stamp
	mu     sync.Mutex // fetches write concurrently
	blocks []Block    // apart (the ranges are merged), in any order
	attr   Attr
	xattrs []Xattr
}

// keeps: a patch holds the data it is given until it is written
// (flushChunk).
func (*patch) keeps() bool { return true }

func (p *patch) writeAt(data []byte, off uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocks = append(p.blocks, Block{Off: off, Data: data})
	return nil
}

func (p *patch) finish(attr Attr, xattrs []Xattr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attr, p.xattrs = attr, xattrs
	return nil
}

// reply is p as a fetch reply (its encoding in the redo log).
func (p *patch) reply() *FetchReply {
	p.mu.Lock()
	defer p.mu.Unlock()
	bl := slices.Clone(p.blocks)
	slices.SortFunc(bl, func(x, y Block) int { return cmp.Compare(x.Off, y.Off) })
	if len(bl) == 0 {
		bl = nil
	}
	return &FetchReply{ID: 1, What: FetchAttr | FetchXattrs | FetchData, Attr: p.attr, Xattrs: p.xattrs, Blocks: bl}
}

// applyTo writes rep (a patch) into fd: its blocks, its size, its metadata.
func applyTo(fd int, rep *FetchReply) error {
	for _, b := range rep.Blocks {
		if err := writeAt(fd, b.Data, b.Off); err != nil {
			return err
		}
	}
	return fdSink(fd).finish(rep.Attr, rep.Xattrs)
}

// redoMagic starts every segment of the redo log.
const redoMagic = "ftredo01"

// redoHeaderLen: magic, the position followed (log ID, seq, epoch), the
// count of patches and the length of their encodings.
const redoHeaderLen = 8 + 3*8 + 4 + 8

// redoEntry is one patch in the redo log.
type redoEntry struct {
	file fileid.Stamp
	rep  *FetchReply
}

// encodeRedo encodes one segment: the patches ps, following position after.
func encodeRedo(after Position, ps []redoEntry) ([]byte, error) {
	b := []byte(redoMagic)
	for _, v := range []uint64{after.LogID, after.Seq, after.Epoch} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(ps)))
	lenAt := len(b)
	b = binary.BigEndian.AppendUint64(b, 0)
	for _, e := range ps {
		b = binary.BigEndian.AppendUint64(b, e.file.ID)
		b = binary.BigEndian.AppendUint32(b, e.file.Gen)
		var err error
		if b, err = AppendFrame(b, e.rep); err != nil {
			return nil, fmt.Errorf("encode the patch of %s: %w", e.file, err)
		}
	}
	binary.BigEndian.PutUint64(b[lenAt:], uint64(len(b)-redoHeaderLen))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))), nil
}

// decodeRedo returns the patches of the segments at the start of b that
// follow position at, in order: it stops at the first segment that is torn,
// damaged, or follows another position (stale, or the start of an older
// log's leftovers).
func decodeRedo(b []byte, at Position) []redoEntry {
	var out []redoEntry
	for len(b) >= redoHeaderLen+4 && string(b[:len(redoMagic)]) == redoMagic {
		after := Position{LogID: binary.BigEndian.Uint64(b[8:]), Seq: binary.BigEndian.Uint64(b[16:]), Epoch: binary.BigEndian.Uint64(b[24:])}
		count := binary.BigEndian.Uint32(b[32:])
		n := binary.BigEndian.Uint64(b[36:])
		if after != at || n > uint64(len(b)-redoHeaderLen-4) {
			break
		}
		end := redoHeaderLen + int(n)
		if crc32.Checksum(b[:end], crc32.MakeTable(crc32.Castagnoli)) != binary.BigEndian.Uint32(b[end:]) {
			break
		}
		es, err := decodeRedoEntries(b[redoHeaderLen:end], count)
		if err != nil {
			break // cannot be: the checksum matched
		}
		out = append(out, es...)
		b = b[end+4:]
	}
	return out
}

func decodeRedoEntries(b []byte, count uint32) ([]redoEntry, error) {
	r := bytes.NewReader(b)
	var out []redoEntry
	for range count {
		var id [12]byte
		if _, err := io.ReadFull(r, id[:]); err != nil {
			return nil, err
		}
		m, err := ReadFrame(r)
		if err != nil {
			return nil, err
		}
		rep, ok := m.(*FetchReply)
		if !ok || rep.Status != FetchOK || rep.What&FetchAttr == 0 {
			return nil, errors.New("not a patch")
		}
		out = append(out, redoEntry{file: fileid.Stamp{ID: binary.BigEndian.Uint64(id[:]), Gen: binary.BigEndian.Uint32(id[8:])}, rep: rep})
	}
	if r.Len() != 0 {
		return nil, errors.New("trailing bytes")
	}
	return out, nil
}

// redoLog is the applier's redo log of in-place patches.
type redoLog struct {
	path string
	fd   int   // -1 until the first segment is written
	off  int64 // where the next segment goes
}

// write appends a segment of ps, following position after, and makes it
// durable.
func (r *redoLog) write(after Position, ps []redoEntry) error {
	b, err := encodeRedo(after, ps)
	if err != nil {
		return err
	}
	if err := r.open(); err != nil {
		return err
	}
	if _, err := unix.Pwrite(r.fd, b, r.off); err != nil {
		return fmt.Errorf("write the redo log: %w", err)
	}
	// Durable (with the size that reaches it) before any patch is written.
	if err := unix.Fdatasync(r.fd); err != nil {
		return fmt.Errorf("sync the redo log: %w", err)
	}
	r.off += int64(len(b))
	return nil
}

// open opens the log, creating it, unless it is open.
func (r *redoLog) open() error {
	if r.fd >= 0 {
		return nil
	}
	fd, err := unix.Open(r.path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("open the redo log: %w", err)
	}
	r.fd = fd
	// Its name is durable before the first segment counts on it.
	if err := syncDir(filepath.Dir(r.path)); err != nil {
		return fmt.Errorf("sync the redo log's directory: %w", err)
	}
	return nil
}

// clear makes the log empty (its patches are durable), durably: the next
// segment goes at its start, and must not be followed by older ones that
// follow the same position.
func (r *redoLog) clear() error {
	r.off = 0
	if err := r.open(); err != nil {
		return err
	}
	if err := unix.Ftruncate(r.fd, 0); err != nil {
		return fmt.Errorf("clear the redo log: %w", err)
	}
	if err := unix.Fsync(r.fd); err != nil {
		return fmt.Errorf("clear the redo log: %w", err)
	}
	return nil
}

func (r *redoLog) close() {
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

// writePatches writes the patches of res into the redo log, durably, before
// any is applied.
func (a *FSApplier) writePatches(res []prepared) error {
	var ps []redoEntry
	for i := range res {
		if res[i].patch != nil {
			ps = append(ps, redoEntry{file: res[i].patch.file, rep: res[i].patch.reply()})
		}
	}
	if len(ps) == 0 {
		return nil
	}
	if err := a.redo.write(a.committed, ps); err != nil {
		return fmt.Errorf("journal: fs applier: %w", err)
	}
	a.patched = true
	return nil
}

// applyPatch writes r's patch into its file.
func (a *FSApplier) applyPatch(r *prepared) error {
	if err := patchAt(r.ref, r.patch.reply()); err != nil {
		return err
	}
	a.count(func(s *FSApplyStats) { s.Patched++ })
	return nil
}

// patchAt writes rep (a patch) into the file ref names.
func patchAt(ref *fileid.Ref, rep *FetchReply) error {
	fd, err := unix.Openat(ref.Dir, ref.Name, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", ref.Rel, err)
	}
	defer unix.Close(fd)
	if err := applyTo(fd, rep); err != nil {
		return fmt.Errorf("patch %s: %w", ref.Rel, err)
	}
	return nil
}

// settlePatches makes the patches applied so far durable and clears the
// redo log, before the batch changes anything in place after them.
func (a *FSApplier) settlePatches() error {
	if !a.patched {
		return nil
	}
	if err := unix.Syncfs(a.syncFD); err != nil {
		return fmt.Errorf("journal: fs applier: syncfs: %w", err)
	}
	if err := a.redo.clear(); err != nil {
		return fmt.Errorf("journal: fs applier: %w", err)
	}
	a.patched = false
	return nil
}

// replayRedo brings the files of a redo log left by a crash to their
// patched state (see above), makes them durable and clears the log.
func (a *FSApplier) replayRedo() error {
	b, err := os.ReadFile(a.redo.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the redo log: %w", err)
	}
	es := decodeRedo(b, a.committed)
	for _, e := range es {
		ref, err := a.cfg.Tree.Resolve(e.file)
		if errors.Is(err, fileid.ErrStale) {
			a.log.Warn("journal apply: redo: the patched file is gone", "file", e.file)
			continue
		}
		if err != nil {
			return fmt.Errorf("redo: find %s: %w", e.file, err)
		}
		err = patchAt(ref, e.rep)
		ref.Close()
		if err != nil {
			return fmt.Errorf("redo: %s: %w", e.file, err)
		}
	}
	if len(es) > 0 {
		if err := unix.Syncfs(a.syncFD); err != nil {
			return fmt.Errorf("redo: syncfs: %w", err)
		}
		a.log.Warn("journal apply: replayed the patches of a batch cut short", "files", len(es), "after", a.committed.Seq)
	}
	return a.redo.clear()
}
