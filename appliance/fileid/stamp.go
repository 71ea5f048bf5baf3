package fileid

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// XattrName is the extended attribute holding a file's Stamp.
const XattrName = "trusted.ftnas.id"

// stampVersion is the first byte of an encoded Stamp.
const stampVersion = 1

// stampLen is the encoded size of a Stamp: version, ID, generation.
const stampLen = 1 + 8 + 4

// ErrNoStamp reports a file that carries no (or no valid) identity yet.
var ErrNoStamp = errors.New("fileid: file has no stamp")

// Stamp is a file's stable identity.
type Stamp struct {
	ID  uint64
	Gen uint32
}

// IsZero reports whether s is the zero Stamp (no identity).
func (s Stamp) IsZero() bool { return s.ID == 0 }

func (s Stamp) String() string { return fmt.Sprintf("%d.%d", s.ID, s.Gen) }

// MarshalBinary encodes s for the xattr.
func (s Stamp) MarshalBinary() []byte {
	b := make([]byte, stampLen)
	b[0] = stampVersion
	binary.BigEndian.PutUint64(b[1:], s.ID)
	binary.BigEndian.PutUint32(b[9:], s.Gen)
	return b
}

// ParseStamp decodes an xattr value written by MarshalBinary.
func ParseStamp(b []byte) (Stamp, error) {
	if len(b) != stampLen {
		return Stamp{}, fmt.Errorf("fileid: parse stamp: length %d, want %d", len(b), stampLen)
	}
	if b[0] != stampVersion {
		return Stamp{}, fmt.Errorf("fileid: parse stamp: unknown version %d", b[0])
	}
	s := Stamp{ID: binary.BigEndian.Uint64(b[1:]), Gen: binary.BigEndian.Uint32(b[9:])}
	if s.ID == 0 {
		return Stamp{}, errors.New("fileid: parse stamp: zero ID")
	}
	return s, nil
}

// SnapPrefix starts the names of read-only snapshots of the volume in its
// root (the journal capture reads its description from one): they hold
// every file's Stamp again, and scans of the volume skip them.
const SnapPrefix = ".ftnas-snap-"
