package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"

	"ftnas/appliance/fileid"
)

// Stream wire format, version 1. Every message is one frame:
//
//	version u8 = 1, type u8, payload length u32 (big-endian), payload
//
// Payloads are big-endian, canonical (one encoding per message) and
// validated on both ends; anything that does not decode ends the session.
//
// Message types added since version 1 was first shipped: MsgFetchKeyed (a
// fetch whose checksums are keyed, see FetchRequest.Key), MsgEpoch (the
// shipper's log took a higher epoch mid-session), MsgHandOff (a hand-off
// with a note). A peer that does not know a type ends the session with a
// protocol error naming it: a receiver of an older version then takes a
// hand-off with a note for no hand-off, which costs its owner what a
// missing hand-off costs, never data.
const (
	frameVersion   = 1
	frameHeaderLen = 6
	// MaxFrame bounds a frame's payload.
	MaxFrame = 16 << 20
	// MaxBatchRecords bounds the records in one Records message.
	MaxBatchRecords = 1 << 16
	// MaxFetchData bounds the range of one fetch, and so its reply's data.
	MaxFetchData = 4 << 20
	// MaxXattrs bounds the extended attributes of one file in a reply.
	MaxXattrs = 1024
	// MaxXattrValue bounds one extended attribute's value (Linux's limit).
	MaxXattrValue = 64 << 10
	maxIDLen      = 128  // cluster and node IDs
	maxMsgLen     = 1024 // error messages
	// MaxNoteLen bounds a hand-off's note (HandOffMsg).
	MaxNoteLen = 1024
	maxWindow  = 1024
)

// MsgType is a frame's type.
type MsgType uint8

// Message types.
const (
	MsgHello MsgType = iota + 1
	MsgRecords
	MsgAck
	MsgFetch
	MsgFetchReply
	MsgError
	MsgFetchKeyed
	MsgEpoch
	MsgHandOff
	msgEnd
)

var msgNames = [...]string{
	MsgHello: "hello", MsgRecords: "records", MsgAck: "ack", MsgFetch: "fetch",
	MsgFetchReply: "fetch reply", MsgError: "error", MsgFetchKeyed: "keyed fetch", MsgEpoch: "epoch",
	MsgHandOff: "hand-off",
}

func (t MsgType) String() string {
	if t > 0 && t < msgEnd {
		return msgNames[t]
	}
	return fmt.Sprintf("msg(%d)", uint8(t))
}

// Message is one of *Hello, *Records, *Ack, *EpochMsg, *FetchRequest,
// *FetchReply, *ErrorMsg, *HandOffMsg.
type Message interface {
	Type() MsgType
	appendPayload(b []byte) ([]byte, error)
}

// Role is which end of the stream a node is.
type Role uint8

// Roles.
const (
	RoleShipper  Role = 1 // the master, which has the log
	RoleReceiver Role = 2 // the standby, which applies it
)

func (r Role) String() string {
	switch r {
	case RoleShipper:
		return "shipper"
	case RoleReceiver:
		return "receiver"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Hello opens a session; the shipper speaks first, the receiver answers.
type Hello struct {
	Role      Role
	ClusterID string
	NodeID    string
	// Epoch: the shipper's current epoch, or the highest the receiver has
	// seen.
	Epoch uint64
	// LogID: the shipper's log, or the log the receiver's position is in (0
	// if it never applied anything).
	LogID uint64
	// First: the shipper's first retained seq; 0 from the receiver.
	First uint64
	// Seq: the shipper's last seq, or the receiver's last applied one.
	Seq uint64
	// Window: the receiver's limit on unacknowledged Records messages; 0
	// from the shipper.
	Window uint32
}

// Records is a batch of consecutive records.
type Records struct {
	Recs []Record
	enc  [][]byte // when set, the encodings of Recs (sent as they are)
}

// Ack acknowledges that the receiver durably applied every record up to Seq.
type Ack struct{ Seq uint64 }

// EpochMsg tells the receiver that the shipper's log now stamps records
// with Epoch (its master was promoted again without starting a new log):
// the receiver's position is in a log of that epoch even before the next
// record comes.
type EpochMsg struct{ Epoch uint64 }

// HandOffMsg ends a session as an ErrorMsg with CodeHandedOff does (the
// receiver has acknowledged the shipper's whole log) and carries a note
// from the shipper's owner to the receiver's, at most MaxNoteLen bytes,
// which the journal does not read (the appliance's: the NFS write
// generation the old master served with, which the new one keeps).
type HandOffMsg struct{ Note []byte }

// What a fetch asks for.
type FetchWhat uint8

// Fetch parts.
const (
	FetchAttr   FetchWhat = 1 << iota // mode, owner, size, times, symlink target
	FetchXattrs                       // every extended attribute except the stamp
	FetchData                         // contents of [Off, Off+Len)

	knownFetch = FetchAttr | FetchXattrs | FetchData
)

// SumLen is the size of a block checksum.
const SumLen = 16

// Sum is a block checksum: the first 16 bytes of its SHA-256, or its keyed
// checksum (SumKey).
type Sum [SumLen]byte

// SumKey keys block checksums (see Summer); the zero key means SHA-256.
type SumKey [16]byte

// FetchRequest asks the master for a file's current state.
type FetchRequest struct {
	ID    uint64 // chosen by the receiver, echoed in the reply
	Share uint64
	File  fileid.Stamp
	What  FetchWhat
	// Off and Len: the range of contents wanted (FetchData). Len is at most
	// MaxFetchData; the reply covers [Off, min(Off+Len, size)).
	Off, Len uint64
	// BlockSize and Sums: the delta. Sums[i] is the receiver's checksum of
	// block [Off+i*BlockSize, +BlockSize); the master leaves out blocks
	// that match. BlockSize is 0 (no delta) or a power of two from 4 KiB
	// to 1 MiB, and Off is a multiple of it.
	BlockSize uint32
	Sums      []Sum
	// Key, if not zero, keys the checksums (Summer): far cheaper to compute
	// than SHA-256, and as safe as long as only the two nodes know the key
	// (the receiver picks it at random), since nobody else can then make two
	// blocks' checksums collide. It needs a block size. A keyed request is
	// a MsgFetchKeyed: the key precedes the sum count.
	Key SumKey
}

// FetchStatus is the outcome of a fetch.
type FetchStatus uint8

// Fetch outcomes.
const (
	FetchOK       FetchStatus = 0
	FetchNotFound FetchStatus = 1 // no such file on the master (any more)
	FetchFailed   FetchStatus = 2 // the master could not read it; see Msg
)

// Attr is a file's metadata as the master has it.
type Attr struct {
	Mode     uint32 // st_mode: type and permission bits
	UID, GID uint32
	Rdev     uint64
	Size     uint64
	Atime    int64 // Unix nanoseconds
	Mtime    int64
	Target   string // symbolic links only
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Block is a piece of a file's contents.
type Block struct {
	Off  uint64
	Data []byte
}

// FetchReply answers a FetchRequest.
type FetchReply struct {
	ID     uint64
	Status FetchStatus
	Msg    string    // FetchFailed: why
	What   FetchWhat // the parts present (those asked for, if Status is OK)
	Attr   Attr
	Xattrs []Xattr // sorted by name, unique
	Blocks []Block // ascending, not overlapping
	// release, if set, gives the buffer Blocks lie in back: on the
	// master to the Source that read them (the shipper calls it once the
	// reply is sent), on the standby to the receiver's payload pool (the
	// applier calls it once nothing holds the blocks or the xattrs any
	// more). It may be called more than once.
	release func()
}

// payloadPool keeps the payload buffers of large fetch replies on the
// standby, so a stream of 4 MiB pieces does not allocate (and the garbage
// collector scan and free) 4 MiB a piece: FetchReply.release gives a
// buffer back once the applier is done with the reply.
type payloadPool struct {
	p sync.Pool
	// poison (tests) overwrites a buffer given back, so a reply used after
	// its release shows.
	poison bool
}

// payloadPoolCap is the capacity of the pooled buffers: a reply of
// MaxFetchData bytes of blocks with its attributes and xattrs fits.
const payloadPoolCap = MaxFetchData + 256<<10

// get returns a buffer of n bytes.
func (pp *payloadPool) get(n int) []byte {
	if n > payloadPoolCap {
		return make([]byte, n)
	}
	if b, ok := pp.p.Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, payloadPoolCap)
}

// put gives b back.
func (pp *payloadPool) put(b []byte) {
	if cap(b) != payloadPoolCap {
		return
	}
	b = b[:cap(b)]
	if pp.poison {
		for i := range b {
			b[i] = 0xa5
		}
	}
	pp.p.Put(&b)
}

// releaseOnce gives p back to pp once, however often it is called.
func releaseOnce(pp *payloadPool, p []byte) func() {
	var once sync.Once
	return func() { once.Do(func() { pp.put(p) }) }
}

// ErrCode classifies an ErrorMsg.
type ErrCode uint16

// Error codes.
const (
	CodeFenced    ErrCode = iota + 1 // the shipper's epoch is below the receiver's
	CodeCluster                      // the peer belongs to another cluster
	CodeResync                       // the log cannot continue the receiver's position
	CodeProtocol                     // a malformed or unexpected message
	CodeApply                        // the receiver failed to apply a record
	CodeShutdown                     // the sender is stopping
	CodeHandedOff                    // the shipper handed off: the receiver acknowledged its whole log
	codeEnd
)

var codeNames = [...]string{
	CodeFenced: "fenced", CodeCluster: "wrong cluster", CodeResync: "resync needed",
	CodeProtocol: "protocol error", CodeApply: "apply failed", CodeShutdown: "shutting down",
	CodeHandedOff: "handed off",
}

func (c ErrCode) String() string {
	if c > 0 && c < codeEnd {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint16(c))
}

// ErrorMsg tells the peer why the session ends.
type ErrorMsg struct {
	Code ErrCode
	Msg  string
}

func (*Hello) Type() MsgType      { return MsgHello }
func (*Records) Type() MsgType    { return MsgRecords }
func (*Ack) Type() MsgType        { return MsgAck }
func (*EpochMsg) Type() MsgType   { return MsgEpoch }
func (*HandOffMsg) Type() MsgType { return MsgHandOff }
func (q *FetchRequest) Type() MsgType {
	if q.Key != (SumKey{}) {
		return MsgFetchKeyed
	}
	return MsgFetch
}
func (*FetchReply) Type() MsgType { return MsgFetchReply }
func (*ErrorMsg) Type() MsgType   { return MsgError }

// AppendFrame appends m as a frame to b.
func AppendFrame(b []byte, m Message) ([]byte, error) {
	start := len(b)
	b = append(b, frameVersion, byte(m.Type()), 0, 0, 0, 0)
	b, err := m.appendPayload(b)
	if err != nil {
		return b[:start], fmt.Errorf("journal: encode %s: %w", m.Type(), err)
	}
	n := len(b) - start - frameHeaderLen
	if n > MaxFrame {
		return b[:start], fmt.Errorf("journal: encode %s: payload of %d bytes exceeds %d", m.Type(), n, MaxFrame)
	}
	binary.BigEndian.PutUint32(b[start+2:], uint32(n))
	return b, nil
}

// WriteFrame writes m to w as one frame, in one Write.
func WriteFrame(w io.Writer, m Message) error {
	b, err := AppendFrame(nil, m)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("journal: write %s: %w", m.Type(), err)
	}
	return nil
}

// ReadFrame reads and decodes one frame. io.EOF means the stream ended
// cleanly between frames.
func ReadFrame(r io.Reader) (Message, error) { return readFrame(r, nil) }

// readFrame is ReadFrame; with pool set, the payload of a large fetch
// reply is one of pool's buffers, given back by the reply's release.
func readFrame(r io.Reader, pool *payloadPool) (Message, error) {
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("journal: read frame header: %w", err)
	}
	if h[0] != frameVersion {
		return nil, fmt.Errorf("journal: read frame: %w: unknown version %d", ErrProtocol, h[0])
	}
	t := MsgType(h[1])
	if t == 0 || t >= msgEnd {
		return nil, fmt.Errorf("journal: read frame: %w: unknown type %d", ErrProtocol, h[1])
	}
	n := binary.BigEndian.Uint32(h[2:])
	if n > MaxFrame {
		return nil, fmt.Errorf("journal: read %s: %w: payload of %d bytes exceeds %d", t, ErrProtocol, n, MaxFrame)
	}
	var get func(int) []byte
	if pool != nil && t == MsgFetchReply {
		get = pool.get
	}
	p, err := readN(r, int(n), get)
	if err != nil {
		return nil, fmt.Errorf("journal: read %s payload of %d bytes: %w", t, n, noEOF(err))
	}
	m, err := DecodePayload(t, p)
	if err != nil {
		if get != nil {
			pool.put(p)
		}
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if fr, ok := m.(*FetchReply); ok && get != nil && cap(p) == payloadPoolCap {
		fr.release = releaseOnce(pool, p)
	}
	return m, nil
}

// readN reads exactly n bytes. A payload above one chunk is allocated
// whole only once its first chunk has come, so a length that lies costs
// at most a chunk until the peer has sent that much; then it is read in
// place, not grown (growing it a chunk at a time allocated a 4 MiB fetch
// reply five times over, zeroed, and copied it four times: the standby's
// largest cost per byte fetched).
//
// get, if set, gives the buffer of a payload above one chunk.
func readN(r io.Reader, n int, get func(int) []byte) ([]byte, error) {
	const chunk = 256 << 10
	if n <= chunk {
		p := make([]byte, n)
		_, err := io.ReadFull(r, p)
		return p, err
	}
	var first [chunk]byte
	if _, err := io.ReadFull(r, first[:]); err != nil {
		return nil, err
	}
	var p []byte
	if get != nil {
		p = get(n)
	} else {
		p = make([]byte, n)
	}
	copy(p, first[:])
	if _, err := io.ReadFull(r, p[chunk:]); err != nil {
		return nil, err
	}
	return p, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// NewFrameReader buffers r for ReadFrame.
func NewFrameReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64<<10) }

// DecodePayload decodes the payload of a frame of type t. The message's
// byte strings (a fetch reply's blocks, xattr values, a note) are slices
// of p, not copies: p must not be reused.
func DecodePayload(t MsgType, p []byte) (Message, error) {
	var m Message
	d := &decoder{b: p, keep: true}
	var err error
	switch t {
	case MsgHello:
		m, err = decodeHello(d)
	case MsgRecords:
		m, err = decodeRecords(d)
	case MsgAck:
		m, err = decodeAck(d)
	case MsgEpoch:
		m, err = decodeEpoch(d)
	case MsgFetch:
		m, err = decodeFetch(d, false)
	case MsgFetchKeyed:
		m, err = decodeFetch(d, true)
	case MsgFetchReply:
		m, err = decodeFetchReply(d)
	case MsgError:
		m, err = decodeError(d)
	case MsgHandOff:
		m, err = decodeHandOff(d)
	default:
		err = fmt.Errorf("unknown type %d", uint8(t))
	}
	if err == nil && d.err != nil {
		err = d.err
	}
	if err == nil && len(d.b) != 0 {
		err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if err != nil {
		return nil, fmt.Errorf("journal: decode %s: %w", t, err)
	}
	return m, nil
}

// bytes32 reads a u32-length-prefixed byte string of at most limit bytes.
func (d *decoder) bytes32(what string, limit int) []byte {
	n := d.u32(what + " length")
	if d.err == nil && uint64(n) > uint64(limit) {
		d.err = fmt.Errorf("%s of %d bytes exceeds %d", what, n, limit)
	}
	if d.err != nil {
		return nil
	}
	return d.bytes(int(n), what)
}

func appendBytes32(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func checkID(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	if len(s) > maxIDLen {
		return fmt.Errorf("%s of %d bytes exceeds %d", what, len(s), maxIDLen)
	}
	for _, c := range []byte(s) {
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("%s %q: only printable ASCII without spaces", what, s)
		}
	}
	return nil
}

// Validate reports what is wrong with h.
func (h *Hello) Validate() error {
	if err := checkID("cluster ID", h.ClusterID); err != nil {
		return err
	}
	if err := checkID("node ID", h.NodeID); err != nil {
		return err
	}
	switch h.Role {
	case RoleShipper:
		if h.Window != 0 {
			return errors.New("shipper hello with a window")
		}
		if h.LogID == 0 {
			return errors.New("shipper hello without a log ID")
		}
		if h.First == 0 || h.First > h.Seq+1 {
			return fmt.Errorf("shipper hello: first %d, last %d", h.First, h.Seq)
		}
	case RoleReceiver:
		if h.Window == 0 || h.Window > maxWindow {
			return fmt.Errorf("receiver window %d not in 1..%d", h.Window, maxWindow)
		}
		if h.First != 0 {
			return errors.New("receiver hello with a first seq")
		}
		if h.LogID == 0 && h.Seq != 0 {
			return errors.New("receiver hello: position without a log ID")
		}
	default:
		return fmt.Errorf("unknown role %d", uint8(h.Role))
	}
	return nil
}

func (h *Hello) appendPayload(b []byte) ([]byte, error) {
	if err := h.Validate(); err != nil {
		return b, err
	}
	b = append(b, byte(h.Role))
	b = appendStr(b, h.ClusterID)
	b = appendStr(b, h.NodeID)
	for _, v := range []uint64{h.Epoch, h.LogID, h.First, h.Seq} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return binary.BigEndian.AppendUint32(b, h.Window), nil
}

func decodeHello(d *decoder) (*Hello, error) {
	h := &Hello{Role: Role(d.u8("role"))}
	h.ClusterID = d.str("cluster ID", maxIDLen)
	h.NodeID = d.str("node ID", maxIDLen)
	h.Epoch = d.u64("epoch")
	h.LogID = d.u64("log ID")
	h.First = d.u64("first")
	h.Seq = d.u64("seq")
	h.Window = d.u32("window")
	if d.err != nil {
		return nil, d.err
	}
	return h, h.Validate()
}

// EncodedRecords makes a Records message from encodings read from a Log.
func EncodedRecords(enc [][]byte) *Records { return &Records{enc: enc} }

// Len is the number of records in the batch.
func (m *Records) Len() int {
	if m.enc != nil {
		return len(m.enc)
	}
	return len(m.Recs)
}

func (m *Records) appendPayload(b []byte) ([]byte, error) {
	n := m.Len()
	if n == 0 || n > MaxBatchRecords {
		return b, fmt.Errorf("%d records, want 1..%d", n, MaxBatchRecords)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	var prev uint64
	for i := range n {
		lenAt := len(b)
		b = append(b, 0, 0, 0, 0)
		var seq uint64
		if m.enc != nil {
			var err error
			if seq, err = EncodedSeq(m.enc[i]); err != nil {
				return b, err
			}
			b = append(b, m.enc[i]...)
		} else {
			var err error
			if b, err = AppendMarshal(b, m.Recs[i]); err != nil {
				return b, err
			}
			seq = m.Recs[i].Seq
		}
		if i > 0 && seq != prev+1 {
			return b, fmt.Errorf("record seq %d after %d", seq, prev)
		}
		if seq == 0 {
			return b, errors.New("record without a seq")
		}
		prev = seq
		binary.BigEndian.PutUint32(b[lenAt:], uint32(len(b)-lenAt-4))
	}
	return b, nil
}

func decodeRecords(d *decoder) (*Records, error) {
	n := d.u32("record count")
	if d.err != nil {
		return nil, d.err
	}
	if n == 0 || n > MaxBatchRecords {
		return nil, fmt.Errorf("%d records, want 1..%d", n, MaxBatchRecords)
	}
	m := &Records{Recs: make([]Record, 0, min(n, 1024))}
	for i := range n {
		l := d.u32("record length")
		if d.err != nil {
			return nil, d.err
		}
		b := d.take(int(min(l, MaxFrame)), "record")
		if d.err != nil {
			return nil, d.err
		}
		r, err := Unmarshal(b)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i+1, err)
		}
		if r.Seq == 0 {
			return nil, fmt.Errorf("record %d without a seq", i+1)
		}
		if i > 0 {
			prev := m.Recs[i-1]
			if r.Seq != prev.Seq+1 {
				return nil, fmt.Errorf("record seq %d after %d", r.Seq, prev.Seq)
			}
			if r.Epoch < prev.Epoch {
				return nil, fmt.Errorf("record %d: epoch %d after %d", r.Seq, r.Epoch, prev.Epoch)
			}
		}
		m.Recs = append(m.Recs, r)
	}
	return m, nil
}

func (m *Ack) appendPayload(b []byte) ([]byte, error) {
	if m.Seq == 0 {
		return b, errors.New("ack of seq 0")
	}
	return binary.BigEndian.AppendUint64(b, m.Seq), nil
}

func decodeAck(d *decoder) (*Ack, error) {
	m := &Ack{Seq: d.u64("seq")}
	if d.err == nil && m.Seq == 0 {
		return nil, errors.New("ack of seq 0")
	}
	return m, d.err
}

func (m *EpochMsg) appendPayload(b []byte) ([]byte, error) {
	if m.Epoch == 0 {
		return b, errors.New("epoch 0")
	}
	return binary.BigEndian.AppendUint64(b, m.Epoch), nil
}

func decodeEpoch(d *decoder) (*EpochMsg, error) {
	m := &EpochMsg{Epoch: d.u64("epoch")}
	if d.err == nil && m.Epoch == 0 {
		return nil, errors.New("epoch 0")
	}
	return m, d.err
}

func (m *HandOffMsg) appendPayload(b []byte) ([]byte, error) {
	if len(m.Note) > MaxNoteLen {
		return b, fmt.Errorf("hand-off note of %d bytes exceeds %d", len(m.Note), MaxNoteLen)
	}
	return appendBytes32(b, m.Note), nil
}

func decodeHandOff(d *decoder) (*HandOffMsg, error) {
	m := &HandOffMsg{Note: d.bytes32("hand-off note", MaxNoteLen)}
	return m, d.err
}

func validBlockSize(bs uint32) bool { return bs >= 4096 && bs <= 1<<20 && bs&(bs-1) == 0 }

// Validate reports what is wrong with q.
func (q *FetchRequest) Validate() error {
	switch {
	case q.ID == 0:
		return errors.New("request ID 0")
	case q.Share == 0:
		return errors.New("zero share")
	case q.File.ID == 0:
		return errors.New("zero file ID")
	case q.What == 0 || q.What&^knownFetch != 0:
		return fmt.Errorf("bad parts %#x", uint8(q.What))
	}
	if q.Key != (SumKey{}) && q.BlockSize == 0 {
		return errors.New("a checksum key without a block size")
	}
	if q.What&FetchData == 0 {
		if q.Off != 0 || q.Len != 0 || q.BlockSize != 0 || len(q.Sums) != 0 {
			return errors.New("range or sums without FetchData")
		}
		return nil
	}
	if q.Len == 0 || q.Len > MaxFetchData {
		return fmt.Errorf("length %d not in 1..%d", q.Len, MaxFetchData)
	}
	if q.Off+q.Len < q.Off {
		return fmt.Errorf("range %d+%d overflows", q.Off, q.Len)
	}
	if q.BlockSize == 0 {
		if len(q.Sums) != 0 {
			return errors.New("sums without a block size")
		}
		return nil
	}
	if !validBlockSize(q.BlockSize) {
		return fmt.Errorf("block size %d: not a power of two in 4096..1048576", q.BlockSize)
	}
	if q.Off%uint64(q.BlockSize) != 0 {
		return fmt.Errorf("offset %d not a multiple of the block size %d", q.Off, q.BlockSize)
	}
	if uint64(len(q.Sums))*uint64(q.BlockSize) >= q.Len+uint64(q.BlockSize) {
		return fmt.Errorf("%d sums of %d-byte blocks exceed the length %d", len(q.Sums), q.BlockSize, q.Len)
	}
	return nil
}

func (q *FetchRequest) appendPayload(b []byte) ([]byte, error) {
	if err := q.Validate(); err != nil {
		return b, err
	}
	b = binary.BigEndian.AppendUint64(b, q.ID)
	b = binary.BigEndian.AppendUint64(b, q.Share)
	b = appendStamp(b, q.File)
	b = append(b, byte(q.What))
	b = binary.BigEndian.AppendUint64(b, q.Off)
	b = binary.BigEndian.AppendUint64(b, q.Len)
	b = binary.BigEndian.AppendUint32(b, q.BlockSize)
	if q.Key != (SumKey{}) {
		b = append(b, q.Key[:]...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(q.Sums)))
	for _, s := range q.Sums {
		b = append(b, s[:]...)
	}
	return b, nil
}

func decodeFetch(d *decoder, keyed bool) (*FetchRequest, error) {
	q := &FetchRequest{ID: d.u64("request ID"), Share: d.u64("share"), File: d.stamp("file")}
	q.What = FetchWhat(d.u8("parts"))
	q.Off = d.u64("offset")
	q.Len = d.u64("length")
	q.BlockSize = d.u32("block size")
	if keyed {
		copy(q.Key[:], d.take(len(q.Key), "checksum key"))
		if d.err == nil && q.Key == (SumKey{}) {
			return nil, errors.New("zero checksum key")
		}
	}
	n := d.u32("sum count")
	if d.err != nil {
		return nil, d.err
	}
	if uint64(n)*SumLen > uint64(len(d.b)) {
		return nil, fmt.Errorf("%d sums, only %d bytes left", n, len(d.b))
	}
	if n > 0 {
		q.Sums = make([]Sum, n)
		for i := range q.Sums {
			copy(q.Sums[i][:], d.take(SumLen, "sum"))
		}
	}
	return q, q.Validate()
}

// Validate reports what is wrong with p.
func (p *FetchReply) Validate() error {
	if p.ID == 0 {
		return errors.New("request ID 0")
	}
	if p.What&^knownFetch != 0 {
		return fmt.Errorf("bad parts %#x", uint8(p.What))
	}
	switch p.Status {
	case FetchOK:
		if p.Msg != "" {
			return errors.New("message on a successful reply")
		}
	case FetchNotFound, FetchFailed:
		if p.What != 0 || p.Attr != (Attr{}) || p.Xattrs != nil || p.Blocks != nil {
			return errors.New("contents on a failed reply")
		}
		if p.Status == FetchFailed && p.Msg == "" {
			return errors.New("failed reply without a message")
		}
		if p.Status == FetchNotFound && p.Msg != "" {
			return errors.New("message on a not-found reply")
		}
		if len(p.Msg) > maxMsgLen {
			return fmt.Errorf("message of %d bytes exceeds %d", len(p.Msg), maxMsgLen)
		}
		return nil
	default:
		return fmt.Errorf("unknown status %d", p.Status)
	}
	if p.What&FetchAttr == 0 {
		if p.Attr != (Attr{}) {
			return errors.New("attributes not announced in parts")
		}
	} else {
		if p.Attr.Mode&^(ModeType|ModePerm) != 0 {
			return fmt.Errorf("mode %#o: unknown bits", p.Attr.Mode)
		}
		if p.Attr.Mode&ModeType == ModeLink {
			if err := checkTarget(p.Attr.Target); err != nil {
				return err
			}
		} else if p.Attr.Target != "" {
			return errors.New("target on a file that is not a symlink")
		}
	}
	if p.What&FetchXattrs == 0 {
		if p.Xattrs != nil {
			return errors.New("xattrs not announced in parts")
		}
	} else {
		if len(p.Xattrs) > MaxXattrs {
			return fmt.Errorf("%d xattrs exceed %d", len(p.Xattrs), MaxXattrs)
		}
		for i, x := range p.Xattrs {
			if err := checkXattrName(x.Name); err != nil {
				return err
			}
			if i > 0 && p.Xattrs[i-1].Name >= x.Name {
				return fmt.Errorf("xattr %q after %q: not sorted and unique", x.Name, p.Xattrs[i-1].Name)
			}
			if len(x.Value) > MaxXattrValue {
				return fmt.Errorf("xattr %q of %d bytes exceeds %d", x.Name, len(x.Value), MaxXattrValue)
			}
		}
	}
	if p.What&FetchData == 0 {
		if p.Blocks != nil {
			return errors.New("blocks not announced in parts")
		}
		return nil
	}
	total := 0
	for i, bl := range p.Blocks {
		if len(bl.Data) == 0 {
			return fmt.Errorf("block %d at %d is empty", i, bl.Off)
		}
		if bl.Off+uint64(len(bl.Data)) < bl.Off {
			return fmt.Errorf("block at %d overflows", bl.Off)
		}
		if i > 0 {
			prev := p.Blocks[i-1]
			if bl.Off < prev.Off+uint64(len(prev.Data)) {
				return fmt.Errorf("block at %d overlaps or precedes the one at %d", bl.Off, prev.Off)
			}
		}
		total += len(bl.Data)
		if total > MaxFetchData {
			return fmt.Errorf("blocks of more than %d bytes", MaxFetchData)
		}
	}
	return nil
}

func (p *FetchReply) appendPayload(b []byte) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return b, err
	}
	b = p.appendHead(b)
	if p.Status == FetchOK && p.What&FetchData != 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p.Blocks)))
		for _, bl := range p.Blocks {
			b = binary.BigEndian.AppendUint64(b, bl.Off)
			b = appendBytes32(b, bl.Data)
		}
	}
	return b, nil
}

// appendHead appends the payload of p up to its blocks.
func (p *FetchReply) appendHead(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, p.ID)
	b = append(b, byte(p.Status))
	if p.Status != FetchOK {
		return appendStr(b, p.Msg)
	}
	b = append(b, byte(p.What))
	if p.What&FetchAttr != 0 {
		a := p.Attr
		b = binary.BigEndian.AppendUint32(b, a.Mode)
		b = binary.BigEndian.AppendUint32(b, a.UID)
		b = binary.BigEndian.AppendUint32(b, a.GID)
		b = binary.BigEndian.AppendUint64(b, a.Rdev)
		b = binary.BigEndian.AppendUint64(b, a.Size)
		b = binary.BigEndian.AppendUint64(b, uint64(a.Atime))
		b = binary.BigEndian.AppendUint64(b, uint64(a.Mtime))
		b = appendStr(b, a.Target)
	}
	if p.What&FetchXattrs != 0 {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.Xattrs)))
		for _, x := range p.Xattrs {
			b = appendStr(b, x.Name)
			b = appendBytes32(b, x.Value)
		}
	}
	return b
}

// directData: a fetch reply's block of at least this many bytes is
// written to the connection from where it lies, not copied into the frame
// first (appendFramePieces).
const directData = 64 << 10

// appendFramePieces encodes m as one frame, as AppendFrame does, except
// that the data of a fetch reply's blocks of directData bytes or more is
// not copied into b: the frame is pieces, to be written in order, which
// are parts of b and those blocks' data. It returns b (to be reused) and
// the pieces.
func appendFramePieces(b []byte, m Message) ([]byte, [][]byte, error) {
	p, ok := m.(*FetchReply)
	if !ok || p.Status != FetchOK || p.What&FetchData == 0 || !slices.ContainsFunc(p.Blocks, func(bl Block) bool { return len(bl.Data) >= directData }) {
		start := len(b)
		b, err := AppendFrame(b, m)
		return b, [][]byte{b[start:]}, err
	}
	if err := p.Validate(); err != nil {
		return b, nil, fmt.Errorf("journal: encode %s: %w", m.Type(), err)
	}
	start := len(b)
	b = append(b, frameVersion, byte(m.Type()), 0, 0, 0, 0)
	b = p.appendHead(b)
	n := uint64(len(b)-start-frameHeaderLen) + 4
	for _, bl := range p.Blocks {
		n += 12 + uint64(len(bl.Data))
	}
	if n > MaxFrame {
		return b[:start], nil, fmt.Errorf("journal: encode %s: payload of %d bytes exceeds %d", m.Type(), n, MaxFrame)
	}
	// The length is in place before any piece is cut from b: a piece
	// keeps the array b had then.
	binary.BigEndian.PutUint32(b[start+2:], uint32(n))
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.Blocks)))
	var pieces [][]byte
	from := start
	for _, bl := range p.Blocks {
		b = binary.BigEndian.AppendUint64(b, bl.Off)
		b = binary.BigEndian.AppendUint32(b, uint32(len(bl.Data)))
		if len(bl.Data) < directData {
			b = append(b, bl.Data...)
			continue
		}
		pieces = append(pieces, b[from:len(b):len(b)], bl.Data)
		from = len(b)
	}
	if from < len(b) {
		pieces = append(pieces, b[from:])
	}
	return b, pieces, nil
}

func decodeFetchReply(d *decoder) (*FetchReply, error) {
	p := &FetchReply{ID: d.u64("request ID"), Status: FetchStatus(d.u8("status"))}
	if d.err != nil {
		return nil, d.err
	}
	if p.Status != FetchOK {
		p.Msg = d.str("message", maxMsgLen)
		if d.err != nil {
			return nil, d.err
		}
		return p, p.Validate()
	}
	p.What = FetchWhat(d.u8("parts"))
	if p.What&FetchAttr != 0 {
		a := &p.Attr
		a.Mode = d.u32("mode")
		a.UID = d.u32("uid")
		a.GID = d.u32("gid")
		a.Rdev = d.u64("rdev")
		a.Size = d.u64("size")
		a.Atime = int64(d.u64("atime"))
		a.Mtime = int64(d.u64("mtime"))
		a.Target = d.str("target", MaxTarget)
	}
	if p.What&FetchXattrs != 0 {
		n := int(d.u16("xattr count"))
		if d.err == nil && n > MaxXattrs {
			return nil, fmt.Errorf("%d xattrs exceed %d", n, MaxXattrs)
		}
		p.Xattrs = make([]Xattr, 0, min(n, 64))
		for range n {
			x := Xattr{Name: d.str("xattr name", MaxName)}
			x.Value = d.bytes32("xattr value", MaxXattrValue)
			if d.err != nil {
				return nil, d.err
			}
			p.Xattrs = append(p.Xattrs, x)
		}
	}
	if p.What&FetchData != 0 {
		n := d.u32("block count")
		if d.err == nil && uint64(n) > uint64(len(d.b)/12) {
			return nil, fmt.Errorf("%d blocks, only %d bytes left", n, len(d.b))
		}
		p.Blocks = make([]Block, 0, min(n, 1024))
		for range n {
			bl := Block{Off: d.u64("block offset")}
			bl.Data = d.bytes32("block", MaxFetchData)
			if d.err != nil {
				return nil, d.err
			}
			p.Blocks = append(p.Blocks, bl)
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return p, p.Validate()
}

// SortXattrs sorts xs by name, as a FetchReply needs them.
func SortXattrs(xs []Xattr) {
	sort.Slice(xs, func(i, j int) bool { return xs[i].Name < xs[j].Name })
}

func (m *ErrorMsg) validate() error {
	if m.Code == 0 || m.Code >= codeEnd {
		return fmt.Errorf("unknown error code %d", uint16(m.Code))
	}
	if len(m.Msg) > maxMsgLen {
		return fmt.Errorf("message of %d bytes exceeds %d", len(m.Msg), maxMsgLen)
	}
	return nil
}

func (m *ErrorMsg) appendPayload(b []byte) ([]byte, error) {
	if err := m.validate(); err != nil {
		return b, err
	}
	b = binary.BigEndian.AppendUint16(b, uint16(m.Code))
	return appendStr(b, m.Msg), nil
}

func decodeError(d *decoder) (*ErrorMsg, error) {
	m := &ErrorMsg{Code: ErrCode(d.u16("code")), Msg: d.str("message", maxMsgLen)}
	if d.err != nil {
		return nil, d.err
	}
	return m, m.validate()
}

// truncMsg shortens s to fit an error message.
func truncMsg(s string) string {
	if len(s) <= maxMsgLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxMsgLen-3], "") + "..."
}
