package fileid

import (
	"encoding/binary"
	"fmt"
)

// handleVersion is the first byte of every handle this package makes.
const handleVersion = 1

// HandleLen is the size of an encoded handle (NFSv3 allows up to 64 bytes).
const HandleLen = 1 + 8 + 8 + 4

// Handle is what an NFS client holds for a file: the share's fsid and the
// file's stable Stamp. Nothing in it depends on paths or inodes.
type Handle struct {
	FSID  uint64
	Stamp Stamp
}

// Encode returns the wire form of h.
func (h Handle) Encode() []byte {
	return h.AppendTo(make([]byte, 0, HandleLen))
}

// AppendTo appends the wire form of h to b.
func (h Handle) AppendTo(b []byte) []byte {
	b = append(b, handleVersion)
	b = binary.BigEndian.AppendUint64(b, h.FSID)
	b = binary.BigEndian.AppendUint64(b, h.Stamp.ID)
	return binary.BigEndian.AppendUint32(b, h.Stamp.Gen)
}

// DecodeHandle parses a handle from a client. Errors name what was wrong;
// the NFS layer answers them with NFS3ERR_BADHANDLE.
func DecodeHandle(b []byte) (Handle, error) {
	if len(b) != HandleLen {
		return Handle{}, fmt.Errorf("fileid: decode handle: length %d, want %d", len(b), HandleLen)
	}
	if b[0] != handleVersion {
		return Handle{}, fmt.Errorf("fileid: decode handle: unknown version %d", b[0])
	}
	h := Handle{
		FSID:  binary.BigEndian.Uint64(b[1:]),
		Stamp: Stamp{ID: binary.BigEndian.Uint64(b[9:]), Gen: binary.BigEndian.Uint32(b[17:])},
	}
	if h.Stamp.ID == 0 {
		return Handle{}, fmt.Errorf("fileid: decode handle: zero file ID")
	}
	return h, nil
}
