package changelog

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// fanotify ABI values (include/uapi/linux/fanotify.h). They are defined here,
// not taken from x/sys/unix, so the pure parser builds on every system.
const (
	fanModify      = 0x00000002
	fanAttrib      = 0x00000004
	fanCloseWrite  = 0x00000008
	fanCreate      = 0x00000100
	fanDelete      = 0x00000200
	fanQOverflow   = 0x00004000
	fanOpenPerm    = 0x00010000
	fanRename      = 0x10000000
	fanOnDir       = 0x40000000
	fanMetaVersion = 3
	fanMetaLen     = 24 // sizeof(struct fanotify_event_metadata)
	fanInfoHdrLen  = 4  // sizeof(struct fanotify_event_info_header)
	fanNoFD        = -1
)

// Info record types (FAN_EVENT_INFO_TYPE_*).
const (
	InfoFID         = 1  // the object itself
	InfoDFIDName    = 2  // a directory and an entry name in it ("." = the directory)
	InfoDFID        = 3  // a directory (the object's parent, or the object if it is one)
	InfoPIDFD       = 4  // a pidfd of the acting process
	InfoError       = 5  // FAN_FS_ERROR details
	InfoRange       = 6  // pre-content access range
	InfoMnt         = 7  // mount ID (mount events)
	InfoOldDFIDName = 10 // FAN_RENAME: where the entry was
	InfoNewDFIDName = 12 // FAN_RENAME: where the entry is now
)

// Handle is a kernel file handle (struct file_handle): opaque bytes that,
// with a descriptor of the filesystem, open the file with open_by_handle_at.
// Two handles of one filesystem are equal if and only if they name the same
// inode (same inode number and generation).
type Handle struct {
	Type  int32
	Bytes []byte
}

// Key is h as a comparable map key.
func (h Handle) Key() string {
	var t [4]byte
	binary.LittleEndian.PutUint32(t[:], uint32(h.Type))
	return string(t[:]) + string(h.Bytes)
}

// maxHandleBytes is the kernel's MAX_HANDLE_SZ.
const maxHandleBytes = 128

// hexKey is hex.EncodeToString([]byte(h.Key())), the form a Change names
// handles by, in one allocation instead of four (one per event record, so
// it shows in the capture's profile).
func (h Handle) hexKey() string {
	if len(h.Bytes) > maxHandleBytes {
		return hex.EncodeToString([]byte(h.Key()))
	}
	var raw [4 + maxHandleBytes]byte
	binary.LittleEndian.PutUint32(raw[:], uint32(h.Type))
	n := 4 + copy(raw[4:], h.Bytes)
	var out [2 * (4 + maxHandleBytes)]byte
	return string(out[:hex.Encode(out[:], raw[:n])])
}

// IsZero reports whether h is absent.
func (h Handle) IsZero() bool { return h.Type == 0 && len(h.Bytes) == 0 }

// Record is one FID-type information record of an event.
type Record struct {
	Type   uint8  // InfoFID, InfoDFID, InfoDFIDName, InfoOldDFIDName, InfoNewDFIDName
	FSID   uint64 // __kernel_fsid_t, both 32-bit words as read (little-endian)
	Handle Handle
	Name   string // entry name for the *_NAME types; "." names the directory itself
}

// Event is one fanotify event as read from a group's descriptor.
type Event struct {
	Mask uint64 // FAN_* bits that happened, with FAN_ONDIR for a directory
	FD   int32  // open descriptor of the object (fd-reporting groups), else -1
	Pid  int32  // acting process (thread if the group reports TIDs), 0 if unknown
	// Records holds the FID-type information records in the order read;
	// other record types are validated and skipped.
	Records []Record
}

// Record returns the first record of type typ.
func (e Event) Record(typ uint8) (Record, bool) {
	for _, r := range e.Records {
		if r.Type == typ {
			return r, true
		}
	}
	return Record{}, false
}

// Overflow reports whether e is a queue-overflow notice: events were lost.
func (e Event) Overflow() bool { return e.Mask&fanQOverflow != 0 }

// IsDir reports whether the event's object is a directory.
func (e Event) IsDir() bool { return e.Mask&fanOnDir != 0 }

// errShortEvent reports a buffer that ends inside an event.
var errShortEvent = errors.New("truncated")

// Parse decodes a buffer read from a fanotify descriptor into events. The
// kernel only returns whole events, so any inconsistency is an error naming
// its offset; events decoded before it are returned with it.
func Parse(b []byte) ([]Event, error) {
	var evs []Event
	off := 0
	for off < len(b) {
		ev, n, err := parseEvent(b[off:])
		if err != nil {
			return evs, fmt.Errorf("changelog: parse fanotify event at offset %d: %w", off, err)
		}
		evs = append(evs, ev)
		off += n
	}
	return evs, nil
}

// parseEvent decodes the event at the start of b and returns its length.
func parseEvent(b []byte) (Event, int, error) {
	if len(b) < fanMetaLen {
		return Event{}, 0, fmt.Errorf("%w: %d bytes left, metadata needs %d", errShortEvent, len(b), fanMetaLen)
	}
	evLen := int(binary.LittleEndian.Uint32(b[0:]))
	vers := b[4]
	metaLen := int(binary.LittleEndian.Uint16(b[6:]))
	if vers != fanMetaVersion {
		return Event{}, 0, fmt.Errorf("metadata version %d, want %d", vers, fanMetaVersion)
	}
	if metaLen < fanMetaLen {
		return Event{}, 0, fmt.Errorf("metadata_len %d below %d", metaLen, fanMetaLen)
	}
	if evLen < metaLen {
		return Event{}, 0, fmt.Errorf("event_len %d below metadata_len %d", evLen, metaLen)
	}
	if evLen > len(b) {
		return Event{}, 0, fmt.Errorf("%w: event_len %d, %d bytes left", errShortEvent, evLen, len(b))
	}
	ev := Event{
		Mask: binary.LittleEndian.Uint64(b[8:]),
		FD:   int32(binary.LittleEndian.Uint32(b[16:])),
		Pid:  int32(binary.LittleEndian.Uint32(b[20:])),
	}
	info := b[metaLen:evLen]
	for len(info) > 0 {
		if len(info) < fanInfoHdrLen {
			return Event{}, 0, fmt.Errorf("info record header: %d bytes left, need %d", len(info), fanInfoHdrLen)
		}
		typ := info[0]
		rlen := int(binary.LittleEndian.Uint16(info[2:]))
		if rlen < fanInfoHdrLen || rlen > len(info) {
			return Event{}, 0, fmt.Errorf("info record type %d: len %d outside [%d, %d]", typ, rlen, fanInfoHdrLen, len(info))
		}
		rec := info[:rlen]
		info = info[rlen:]
		switch typ {
		case InfoFID, InfoDFID, InfoDFIDName, InfoOldDFIDName, InfoNewDFIDName:
			r, err := parseFID(typ, rec)
			if err != nil {
				return Event{}, 0, fmt.Errorf("info record type %d: %w", typ, err)
			}
			if ev.Records == nil {
				ev.Records = make([]Record, 0, 2) // a FID and a DFID_NAME, mostly
			}
			ev.Records = append(ev.Records, r)
		}
	}
	return ev, evLen, nil
}

// parseFID decodes a fanotify_event_info_fid record (header included).
func parseFID(typ uint8, rec []byte) (Record, error) {
	const fixed = fanInfoHdrLen + 8 + 8 // header, fsid, file_handle header
	if len(rec) < fixed {
		return Record{}, fmt.Errorf("length %d below %d", len(rec), fixed)
	}
	r := Record{Type: typ, FSID: binary.LittleEndian.Uint64(rec[4:])}
	hb := binary.LittleEndian.Uint32(rec[12:])
	r.Handle.Type = int32(binary.LittleEndian.Uint32(rec[16:]))
	rest := rec[fixed:]
	if uint64(hb) > uint64(len(rest)) {
		return Record{}, fmt.Errorf("handle_bytes %d, %d bytes left", hb, len(rest))
	}
	r.Handle.Bytes = append([]byte(nil), rest[:hb]...)
	rest = rest[hb:]
	switch typ {
	case InfoDFIDName, InfoOldDFIDName, InfoNewDFIDName:
		end := strings.IndexByte(string(rest), 0)
		if end < 0 {
			return Record{}, errors.New("name is not NUL-terminated")
		}
		name := string(rest[:end])
		if name == "" || strings.IndexByte(name, '/') >= 0 {
			return Record{}, fmt.Errorf("bad entry name %q", name)
		}
		r.Name = name
	}
	return r, nil
}
