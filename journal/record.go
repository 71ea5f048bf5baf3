package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"ftnas/appliance/fileid"
)

// Op is the kind of change a Record describes.
type Op uint8

// The operations. Values are part of the encoding: never renumber.
const (
	// OpCreate: File was created as Name in Parent. Mode carries the file
	// type (regular, FIFO, socket, device) and permissions; Rdev the device
	// number of a device node.
	OpCreate Op = iota + 1
	// OpMkdir: directory File was created as Name in Parent.
	OpMkdir
	// OpSymlink: symbolic link File to Target was created as Name in Parent.
	OpSymlink
	// OpLink: existing File got another name, Name in Parent.
	OpLink
	// OpRemove: the name Name in Parent, which was File, was unlinked.
	OpRemove
	// OpRmdir: the empty directory File, Name in Parent, was removed.
	OpRmdir
	// OpRename: File moved from Name in Parent to NewName in NewParent,
	// replacing what was there.
	OpRename
	// OpWrite: File's contents changed in [Off, Off+Len). Len 0 means the
	// range is unknown: fetch the whole file. With FlagInline, Data is the
	// written bytes.
	OpWrite
	// OpTruncate: File's size was set to Size.
	OpTruncate
	// OpSetAttr: File's attributes in AttrMask changed to the values given.
	// An empty AttrMask means "some attributes or xattrs changed": fetch
	// them all.
	OpSetAttr
	// OpSetXattr: extended attribute Name of File was set; with FlagInline,
	// Data is its value, else fetch it.
	OpSetXattr
	// OpRemoveXattr: extended attribute Name of File was removed.
	OpRemoveXattr
	// OpRescan: capture lost events for Share (or, if File is set, for the
	// subtree at File): compare it with the master's and repair.
	OpRescan
	// OpPrune: the entries of directory File whose names sort (bytewise) in
	// [Name, NewName) are exactly the names listed in Data: remove every
	// other entry in that range, a directory with everything below it. An
	// empty Name is "from the first", an empty NewName "to the last". Data
	// (FlagInline, always set) holds the names, sorted, unique and
	// NUL-separated; it is empty (not nil) when the range holds none. The
	// ranges are half-open so that several records can tile a directory
	// too large for one record's Data without a gap between them. Emitted
	// by a rescan after it has described a directory in full, so a standby
	// loses what the master no longer has (see package capture).
	OpPrune

	opEnd // first invalid value
)

var opNames = [...]string{
	OpCreate: "create", OpMkdir: "mkdir", OpSymlink: "symlink", OpLink: "link",
	OpRemove: "remove", OpRmdir: "rmdir", OpRename: "rename", OpWrite: "write",
	OpTruncate: "truncate", OpSetAttr: "setattr", OpSetXattr: "setxattr",
	OpRemoveXattr: "removexattr", OpRescan: "rescan", OpPrune: "prune",
}

func (o Op) String() string {
	if o > 0 && o < opEnd {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Valid reports whether o is a known operation.
func (o Op) Valid() bool { return o > 0 && o < opEnd }

// Flags qualify a Record.
type Flags uint8

// FlagInline marks a record whose Data is the content (OpWrite), the value
// (OpSetXattr) or the names (OpPrune), so the standby need not fetch it.
const FlagInline Flags = 1 << 0

const knownFlags = FlagInline

// AttrMask says which attributes an OpSetAttr record carries.
type AttrMask uint8

// Attribute bits.
const (
	AttrMode AttrMask = 1 << iota
	AttrUID
	AttrGID
	AttrAtime
	AttrMtime

	knownAttrs = AttrMode | AttrUID | AttrGID | AttrAtime | AttrMtime
)

// POSIX file-type bits of Mode (the st_mode values, the same on every Linux).
const (
	ModeType   = 0o170000
	ModeFIFO   = 0o010000
	ModeChar   = 0o020000
	ModeDir    = 0o040000
	ModeBlock  = 0o060000
	ModeReg    = 0o100000
	ModeLink   = 0o120000
	ModeSocket = 0o140000
	ModePerm   = 0o7777 // permission, setuid, setgid and sticky bits
)

// Limits of the encoding.
const (
	MaxName   = 255     // a file or xattr name, in bytes (NAME_MAX)
	MaxTarget = 4095    // a symlink target, in bytes (PATH_MAX-1)
	MaxInline = 1 << 20 // inline Data of one record
)

// Record is one change. Which fields an Op uses is listed at the Op; all
// others must be zero (Validate enforces it), so every valid Record has
// exactly one encoding.
type Record struct {
	Seq   uint64 // position in the log; assigned by Log.Append
	Epoch uint64 // the master's fencing epoch; assigned by Log.Append
	Time  int64  // when the change was captured, Unix nanoseconds
	Op    Op
	Flags Flags
	Share uint64 // the share's FSID

	File      fileid.Stamp // the file changed (optional for OpRescan)
	Parent    fileid.Stamp // the directory of Name
	Name      string       // entry name in Parent, the xattr name, or OpPrune's range start
	NewParent fileid.Stamp // OpRename: the destination directory
	NewName   string       // OpRename: the destination name; OpPrune: the range end
	Target    string       // OpSymlink: the link's target

	Off, Len uint64 // OpWrite: the changed range
	Size     uint64 // OpTruncate: the new size

	AttrMask AttrMask // OpSetAttr: which of the following are set
	Mode     uint32   // st_mode: type and permission bits (see Op)
	UID, GID uint32
	Rdev     uint64 // OpCreate of a device node
	Atime    int64  // Unix nanoseconds
	Mtime    int64  // Unix nanoseconds

	Data []byte // FlagInline: the written bytes, the xattr value or the pruned directory's names
}

// Wire format, version 1, all integers big-endian:
//
//	0  version  u8 = 1
//	1  op       u8
//	2  flags    u8
//	3  seq      u64
//	11 epoch    u64
//	19 time     i64
//	27 share    u64
//	35 file     u64 id, u32 gen
//	47 the op's fields, in this order where used:
//	   parent (u64,u32), name (u16 len, bytes), newparent, newname, target,
//	   off u64, len u64, size u64, attrmask u8, mode u32, uid u32, gid u32,
//	   rdev u64, atime i64, mtime i64, data
//
// Inline data of OpWrite is exactly Len bytes; of OpSetXattr and OpPrune it
// is a u32 length and the bytes. Nothing may follow.
//
// Ops added since version 1 was first shipped: OpPrune. The layout of the
// others is unchanged, so the version stays 1: a decoder that predates an
// op rejects its records as an unknown op, naming it.
const (
	recordVersion = 1
	offSeq        = 3
	offEpoch      = 11
	headerLen     = 47
)

// field is one op-specific field, in wire order.
type field uint16

const (
	fParent field = 1 << iota
	fName
	fNewParent
	fNewName
	fTarget
	fOff
	fLen
	fSize
	fAttrMask
	fMode
	fUID
	fGID
	fRdev
	fAtime
	fMtime
	fData
)

// opFields lists the fields each op carries on the wire.
var opFields = [opEnd]field{
	OpCreate:      fParent | fName | fMode | fUID | fGID | fRdev,
	OpMkdir:       fParent | fName | fMode | fUID | fGID,
	OpSymlink:     fParent | fName | fTarget | fUID | fGID,
	OpLink:        fParent | fName,
	OpRemove:      fParent | fName,
	OpRmdir:       fParent | fName,
	OpRename:      fParent | fName | fNewParent | fNewName,
	OpWrite:       fOff | fLen | fData,
	OpTruncate:    fSize,
	OpSetAttr:     fAttrMask | fMode | fUID | fGID | fAtime | fMtime,
	OpSetXattr:    fName | fData,
	OpRemoveXattr: fName,
	OpRescan:      0,
	OpPrune:       fName | fNewName | fData,
}

// Validate reports what is wrong with r, or nil. Seq and Epoch may be zero
// (not yet assigned).
func (r *Record) Validate() error {
	if err := r.validate(); err != nil {
		return fmt.Errorf("journal: invalid %s record: %w", r.Op, err)
	}
	return nil
}

func (r *Record) validate() error {
	if !r.Op.Valid() {
		return errors.New("unknown op")
	}
	fs := opFields[r.Op]
	if r.Flags&^knownFlags != 0 {
		return fmt.Errorf("unknown flags %#x", uint8(r.Flags&^knownFlags))
	}
	if r.Flags&FlagInline != 0 && fs&fData == 0 {
		return errors.New("inline flag on an op without data")
	}
	if r.Share == 0 {
		return errors.New("zero share")
	}
	if r.File.ID == 0 && r.Op != OpRescan {
		return errors.New("zero file ID")
	}
	if r.File.ID == 0 && r.File.Gen != 0 {
		return errors.New("file generation without an ID")
	}
	// Fields the op does not use must be zero.
	unused := []struct {
		f    field
		zero bool
		name string
	}{
		{fParent, r.Parent == fileid.Stamp{}, "parent"},
		{fName, r.Name == "", "name"},
		{fNewParent, r.NewParent == fileid.Stamp{}, "new parent"},
		{fNewName, r.NewName == "", "new name"},
		{fTarget, r.Target == "", "target"},
		{fOff, r.Off == 0, "offset"},
		{fLen, r.Len == 0, "length"},
		{fSize, r.Size == 0, "size"},
		{fAttrMask, r.AttrMask == 0, "attribute mask"},
		{fMode, r.Mode == 0, "mode"},
		{fUID, r.UID == 0, "uid"},
		{fGID, r.GID == 0, "gid"},
		{fRdev, r.Rdev == 0, "rdev"},
		{fAtime, r.Atime == 0, "atime"},
		{fMtime, r.Mtime == 0, "mtime"},
		{fData, r.Data == nil, "data"},
	}
	for _, u := range unused {
		if fs&u.f == 0 && !u.zero {
			return fmt.Errorf("%s set but not used by this op", u.name)
		}
	}
	if fs&fParent != 0 && r.Parent.ID == 0 {
		return errors.New("zero parent ID")
	}
	if r.Op == OpPrune {
		return r.validatePrune()
	}
	if fs&fName != 0 {
		if r.Op == OpSetXattr || r.Op == OpRemoveXattr {
			if err := checkXattrName(r.Name); err != nil {
				return err
			}
		} else if err := checkName("name", r.Name); err != nil {
			return err
		}
	}
	if fs&fNewParent != 0 && r.NewParent.ID == 0 {
		return errors.New("zero new parent ID")
	}
	if fs&fNewName != 0 {
		if err := checkName("new name", r.NewName); err != nil {
			return err
		}
	}
	if fs&fTarget != 0 {
		if err := checkTarget(r.Target); err != nil {
			return err
		}
	}
	switch r.Op {
	case OpCreate:
		switch r.Mode & ModeType {
		case ModeReg, ModeFIFO, ModeSocket:
			if r.Rdev != 0 {
				return errors.New("rdev on a non-device")
			}
		case ModeChar, ModeBlock:
		default:
			return fmt.Errorf("mode %#o: file type not regular, FIFO, socket or device", r.Mode)
		}
		if r.Mode&^(ModeType|ModePerm) != 0 {
			return fmt.Errorf("mode %#o: unknown bits", r.Mode)
		}
	case OpMkdir:
		if r.Mode&^ModePerm != 0 {
			return fmt.Errorf("mode %#o: only permission bits allowed", r.Mode)
		}
	case OpWrite:
		if r.Off+r.Len < r.Off {
			return fmt.Errorf("range %d+%d overflows", r.Off, r.Len)
		}
		if r.Len == 0 && r.Off != 0 {
			return errors.New("offset without a length (unknown range has both zero)")
		}
		if r.Flags&FlagInline != 0 {
			if r.Len == 0 || r.Len > MaxInline {
				return fmt.Errorf("inline length %d not in 1..%d", r.Len, MaxInline)
			}
			if uint64(len(r.Data)) != r.Len {
				return fmt.Errorf("inline data is %d bytes, length says %d", len(r.Data), r.Len)
			}
		} else if r.Data != nil {
			return errors.New("data without the inline flag")
		}
	case OpSetAttr:
		if r.AttrMask&^knownAttrs != 0 {
			return fmt.Errorf("unknown attribute bits %#x", uint8(r.AttrMask&^knownAttrs))
		}
		for _, a := range []struct {
			bit  AttrMask
			zero bool
			name string
		}{
			{AttrMode, r.Mode == 0, "mode"}, {AttrUID, r.UID == 0, "uid"}, {AttrGID, r.GID == 0, "gid"},
			{AttrAtime, r.Atime == 0, "atime"}, {AttrMtime, r.Mtime == 0, "mtime"},
		} {
			if r.AttrMask&a.bit == 0 && !a.zero {
				return fmt.Errorf("%s set but not in the attribute mask", a.name)
			}
		}
		if r.Mode&^ModePerm != 0 {
			return fmt.Errorf("mode %#o: only permission bits allowed", r.Mode)
		}
	case OpSetXattr:
		if r.Flags&FlagInline != 0 {
			if r.Data == nil {
				return errors.New("inline flag without data (use an empty, non-nil slice for an empty value)")
			}
			if len(r.Data) > MaxInline {
				return fmt.Errorf("inline value of %d bytes exceeds %d", len(r.Data), MaxInline)
			}
		} else if r.Data != nil {
			return errors.New("data without the inline flag")
		}
	}
	return nil
}

// validatePrune checks an OpPrune record: its range and its names.
func (r *Record) validatePrune() error {
	if r.Name != "" {
		if err := checkName("range start", r.Name); err != nil {
			return err
		}
	}
	if r.NewName != "" {
		if err := checkName("range end", r.NewName); err != nil {
			return err
		}
	}
	if r.Name != "" && r.NewName != "" && r.Name >= r.NewName {
		return fmt.Errorf("empty or inverted range [%q, %q)", r.Name, r.NewName)
	}
	if r.Flags&FlagInline == 0 {
		return errors.New("names without the inline flag")
	}
	if r.Data == nil {
		return errors.New("inline flag without data (use an empty, non-nil slice for no names)")
	}
	if len(r.Data) > MaxInline {
		return fmt.Errorf("names of %d bytes exceed %d", len(r.Data), MaxInline)
	}
	prev := ""
	for i, name := range PruneNames(r.Data) {
		if err := checkName("listed name", name); err != nil {
			return err
		}
		if i > 0 && name <= prev {
			return fmt.Errorf("listed names not sorted and unique: %q after %q", name, prev)
		}
		if name < r.Name || r.NewName != "" && name >= r.NewName {
			return fmt.Errorf("listed name %q outside the range [%q, %q)", name, r.Name, r.NewName)
		}
		prev = name
	}
	return nil
}

// PruneNames splits an OpPrune record's Data into its names.
func PruneNames(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	return strings.Split(string(data), "\x00")
}

// AppendPruneName appends name to an OpPrune record's Data.
func AppendPruneName(data []byte, name string) []byte {
	if len(data) > 0 {
		data = append(data, 0)
	}
	return append(data, name...)
}

func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s", what)
	case len(s) > MaxName:
		return fmt.Errorf("%s of %d bytes exceeds %d", what, len(s), MaxName)
	case s == "." || s == "..":
		return fmt.Errorf("%s %q not allowed", what, s)
	case strings.ContainsAny(s, "/\x00"):
		return fmt.Errorf("%s %q contains '/' or NUL", what, s)
	}
	return nil
}

func checkXattrName(s string) error {
	switch {
	case s == "":
		return errors.New("empty xattr name")
	case len(s) > MaxName:
		return fmt.Errorf("xattr name of %d bytes exceeds %d", len(s), MaxName)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("xattr name %q contains NUL", s)
	}
	return nil
}

func checkTarget(s string) error {
	switch {
	case s == "":
		return errors.New("empty symlink target")
	case len(s) > MaxTarget:
		return fmt.Errorf("symlink target of %d bytes exceeds %d", len(s), MaxTarget)
	case strings.IndexByte(s, 0) >= 0:
		return errors.New("symlink target contains NUL")
	}
	return nil
}

// Marshal returns the encoding of r, after validating it.
func Marshal(r Record) ([]byte, error) { return AppendMarshal(nil, r) }

// AppendMarshal appends the encoding of r to b.
func AppendMarshal(b []byte, r Record) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return b, err
	}
	fs := opFields[r.Op]
	b = append(b, recordVersion, byte(r.Op), byte(r.Flags))
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, r.Epoch)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time))
	b = binary.BigEndian.AppendUint64(b, r.Share)
	b = appendStamp(b, r.File)
	if fs&fParent != 0 {
		b = appendStamp(b, r.Parent)
	}
	if fs&fName != 0 {
		b = appendStr(b, r.Name)
	}
	if fs&fNewParent != 0 {
		b = appendStamp(b, r.NewParent)
	}
	if fs&fNewName != 0 {
		b = appendStr(b, r.NewName)
	}
	if fs&fTarget != 0 {
		b = appendStr(b, r.Target)
	}
	if fs&fOff != 0 {
		b = binary.BigEndian.AppendUint64(b, r.Off)
	}
	if fs&fLen != 0 {
		b = binary.BigEndian.AppendUint64(b, r.Len)
	}
	if fs&fSize != 0 {
		b = binary.BigEndian.AppendUint64(b, r.Size)
	}
	if fs&fAttrMask != 0 {
		b = append(b, byte(r.AttrMask))
	}
	if fs&fMode != 0 {
		b = binary.BigEndian.AppendUint32(b, r.Mode)
	}
	if fs&fUID != 0 {
		b = binary.BigEndian.AppendUint32(b, r.UID)
	}
	if fs&fGID != 0 {
		b = binary.BigEndian.AppendUint32(b, r.GID)
	}
	if fs&fRdev != 0 {
		b = binary.BigEndian.AppendUint64(b, r.Rdev)
	}
	if fs&fAtime != 0 {
		b = binary.BigEndian.AppendUint64(b, uint64(r.Atime))
	}
	if fs&fMtime != 0 {
		b = binary.BigEndian.AppendUint64(b, uint64(r.Mtime))
	}
	if r.Flags&FlagInline != 0 {
		if r.Op == OpSetXattr || r.Op == OpPrune {
			b = binary.BigEndian.AppendUint32(b, uint32(len(r.Data)))
		}
		b = append(b, r.Data...)
	}
	return b, nil
}

func appendStamp(b []byte, s fileid.Stamp) []byte {
	b = binary.BigEndian.AppendUint64(b, s.ID)
	return binary.BigEndian.AppendUint32(b, s.Gen)
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// decoder reads fields from an encoded record, remembering the first error.
type decoder struct {
	b   []byte
	err error
	// keep: b is the decoder's to keep (a frame's payload, read into a
	// buffer of its own): byte strings are slices of it, not copies.
	keep bool
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("truncated at %s: need %d bytes, have %d", what, n, len(d.b))
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(what string) uint8 {
	if v := d.take(1, what); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16(what string) uint16 {
	if v := d.take(2, what); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32(what string) uint32 {
	if v := d.take(4, what); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if v := d.take(8, what); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) stamp(what string) fileid.Stamp {
	return fileid.Stamp{ID: d.u64(what), Gen: d.u32(what)}
}

func (d *decoder) str(what string, limit int) string {
	n := int(d.u16(what))
	if d.err == nil && n > limit {
		d.err = fmt.Errorf("%s length %d exceeds %d", what, n, limit)
		return ""
	}
	return string(d.take(n, what))
}

// bytes returns a copy of the next n bytes (never nil when n is 0 and there
// was no error).
func (d *decoder) bytes(n int, what string) []byte {
	v := d.take(n, what)
	if d.err != nil {
		return nil
	}
	if d.keep {
		return v[:n:n]
	}
	return append(make([]byte, 0, n), v...)
}

// Unmarshal decodes a record written by Marshal. It copies everything it
// keeps, so b may be reused. Errors say what was wrong.
func Unmarshal(b []byte) (Record, error) {
	r, err := unmarshal(b)
	if err != nil {
		return Record{}, fmt.Errorf("journal: decode record: %w", err)
	}
	return r, nil
}

func unmarshal(b []byte) (Record, error) {
	if len(b) < headerLen {
		return Record{}, fmt.Errorf("%d bytes, shorter than the %d-byte header", len(b), headerLen)
	}
	if b[0] != recordVersion {
		return Record{}, fmt.Errorf("unknown version %d", b[0])
	}
	d := decoder{b: b[1:]}
	var r Record
	r.Op = Op(d.u8("op"))
	if !r.Op.Valid() {
		return Record{}, fmt.Errorf("unknown op %d", uint8(r.Op))
	}
	r.Flags = Flags(d.u8("flags"))
	r.Seq = d.u64("seq")
	r.Epoch = d.u64("epoch")
	r.Time = int64(d.u64("time"))
	r.Share = d.u64("share")
	r.File = d.stamp("file")
	fs := opFields[r.Op]
	if fs&fParent != 0 {
		r.Parent = d.stamp("parent")
	}
	if fs&fName != 0 {
		r.Name = d.str("name", MaxName)
	}
	if fs&fNewParent != 0 {
		r.NewParent = d.stamp("new parent")
	}
	if fs&fNewName != 0 {
		r.NewName = d.str("new name", MaxName)
	}
	if fs&fTarget != 0 {
		r.Target = d.str("target", MaxTarget)
	}
	if fs&fOff != 0 {
		r.Off = d.u64("offset")
	}
	if fs&fLen != 0 {
		r.Len = d.u64("length")
	}
	if fs&fSize != 0 {
		r.Size = d.u64("size")
	}
	if fs&fAttrMask != 0 {
		r.AttrMask = AttrMask(d.u8("attribute mask"))
	}
	if fs&fMode != 0 {
		r.Mode = d.u32("mode")
	}
	if fs&fUID != 0 {
		r.UID = d.u32("uid")
	}
	if fs&fGID != 0 {
		r.GID = d.u32("gid")
	}
	if fs&fRdev != 0 {
		r.Rdev = d.u64("rdev")
	}
	if fs&fAtime != 0 {
		r.Atime = int64(d.u64("atime"))
	}
	if fs&fMtime != 0 {
		r.Mtime = int64(d.u64("mtime"))
	}
	if d.err == nil && r.Flags&FlagInline != 0 && fs&fData != 0 {
		var n uint64
		switch r.Op {
		case OpSetXattr:
			n = uint64(d.u32("xattr value length"))
		case OpPrune:
			n = uint64(d.u32("names length"))
		default:
			n = r.Len
		}
		if d.err == nil {
			if n > MaxInline {
				return Record{}, fmt.Errorf("inline data of %d bytes exceeds %d", n, MaxInline)
			}
			r.Data = d.bytes(int(n), "inline data")
		}
	}
	if d.err != nil {
		return Record{}, d.err
	}
	if len(d.b) != 0 {
		return Record{}, fmt.Errorf("%d trailing bytes after a %s record", len(d.b), r.Op)
	}
	if err := r.validate(); err != nil {
		return Record{}, fmt.Errorf("%s record: %w", r.Op, err)
	}
	return r, nil
}

// EncodedSeq reads the sequence number of an encoded record without decoding
// the rest.
func EncodedSeq(b []byte) (uint64, error) {
	if len(b) < headerLen || b[0] != recordVersion {
		return 0, errors.New("journal: encoded seq: not a version 1 record")
	}
	return binary.BigEndian.Uint64(b[offSeq:]), nil
}

// setSeqEpoch overwrites the sequence number and epoch of an encoded record
// in place; the log stamps records this way after they were encoded by their
// appenders.
func setSeqEpoch(b []byte, seq, epoch uint64) {
	binary.BigEndian.PutUint64(b[offSeq:], seq)
	binary.BigEndian.PutUint64(b[offEpoch:], epoch)
}
