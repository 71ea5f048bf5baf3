package heartbeat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Wire format, version 2: a fixed 92-byte datagram, big-endian.
//
//	off len field
//	  0   4 magic "FTHB"
//	  4   1 version (2)
//	  5   1 state
//	  6   1 path the datagram was sent on
//	  7   1 flags
//	  8   8 cluster id
//	 16   4 node id (sender)
//	 20   8 epoch
//	 28   8 sequence
//	 36   8 journal position
//	 44   8 sender's wall clock, unix ns (informational)
//	 52   8 ack: the newest sequence the sender heard from its peer (0: none)
//	 60  32 HMAC-SHA256(key, bytes 0..59)
//
// Version 1 (firmware before the ack) is the same without the ack: 84
// bytes, the HMAC over bytes 0..51. It is still decoded (Msg.Legacy), so
// a pair keeps its heartbeats while one node is updated.
const (
	Magic       = "FTHB"
	Version     = 2
	MessageSize = bodySize + sha256.Size
	bodySize    = 60
	// LegacyVersion is the previous format, without the ack.
	LegacyVersion     = 1
	LegacyMessageSize = legacyBodySize + sha256.Size
	legacyBodySize    = 52
	// MinKeyLen is the shortest HMAC key NewReceiver accepts.
	MinKeyLen = 16
	// MaxPaths is the most heartbeat paths a pair may use.
	MaxPaths = 4
)

// Flags are per-message bits.
type Flags uint8

// Flag bits.
const (
	// FlagPrimary: the sender's configured role is primary.
	FlagPrimary Flags = 1 << iota
	// FlagYield: the sender does not want to serve (it handed over, or an
	// operator demoted it); the peer may promote at once.
	FlagYield
	// FlagRequest: the sender asks for the service (Promote or Failback);
	// a serving peer hands over once the sender has caught up.
	FlagRequest
	// FlagSynced: the sender, not serving, is a copy of the serving
	// peer's data (see Machine: synced); never set by version 1.
	FlagSynced
	// FlagOutdate: the sender serves and goes on without its standby's
	// journal (the standby is alive but not receiving): the receiver is
	// no copy of its data from now on, until it follows the sender's log
	// and catches up again. The sender's changes are acknowledged without
	// the standby only once the standby has shown, in a heartbeat that
	// acknowledges one carrying this flag, that it is no longer synced
	// (DRBD's "outdate the peer" before a primary goes on alone).
	FlagOutdate

	knownFlags = FlagPrimary | FlagYield | FlagRequest | FlagSynced | FlagOutdate
)

func (f Flags) String() string {
	s := ""
	add := func(b Flags, name string) {
		if f&b != 0 {
			if s != "" {
				s += "|"
			}
			s += name
		}
	}
	add(FlagPrimary, "primary")
	add(FlagYield, "yield")
	add(FlagRequest, "request")
	add(FlagSynced, "synced")
	add(FlagOutdate, "outdate")
	if rest := f &^ knownFlags; rest != 0 {
		add(rest, fmt.Sprintf("%#x", uint8(rest)))
	}
	if s == "" {
		return "0"
	}
	return s
}

// Msg is one heartbeat.
type Msg struct {
	ClusterID uint64
	NodeID    uint32
	Path      uint8 // the path it was sent on; the receiver checks it
	State     State
	Flags     Flags
	Epoch     uint64
	Seq       uint64 // strictly increasing per sender, across restarts
	Journal   uint64 // sender's journal position
	Time      int64  // sender's wall clock, unix ns; informational only
	// Ack is the newest sequence the sender heard from its peer, 0 if
	// none: the receiver's proof of when its peer last heard it.
	Ack uint64
	// Legacy: version 1, which has no Ack. Decode sets it; Encode then
	// writes version 1 (tests of mixed-version pairs).
	Legacy bool
}

// Decode errors. Decode wraps them with details; test with errors.Is.
var (
	ErrLength  = errors.New("bad length")
	ErrMagic   = errors.New("bad magic")
	ErrVersion = errors.New("unsupported version")
	ErrKey     = errors.New("no key")
	ErrMAC     = errors.New("bad MAC")
	ErrField   = errors.New("bad field")
)

// Encode returns m as a datagram authenticated with key.
func Encode(key []byte, m Msg) []byte {
	return AppendEncode(make([]byte, 0, MessageSize), key, m)
}

// AppendEncode appends the datagram for m to dst.
func AppendEncode(dst, key []byte, m Msg) []byte {
	start := len(dst)
	v := byte(Version)
	if m.Legacy {
		v = LegacyVersion
	}
	dst = append(dst, Magic...)
	dst = append(dst, v, byte(m.State), m.Path, byte(m.Flags))
	dst = binary.BigEndian.AppendUint64(dst, m.ClusterID)
	dst = binary.BigEndian.AppendUint32(dst, m.NodeID)
	dst = binary.BigEndian.AppendUint64(dst, m.Epoch)
	dst = binary.BigEndian.AppendUint64(dst, m.Seq)
	dst = binary.BigEndian.AppendUint64(dst, m.Journal)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.Time))
	if !m.Legacy {
		dst = binary.BigEndian.AppendUint64(dst, m.Ack)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(dst[start:])
	return mac.Sum(dst)
}

// Decode parses and authenticates a datagram. The MAC is checked before
// any field is interpreted. Errors wrap ErrLength, ErrMagic, ErrVersion,
// ErrKey, ErrMAC or ErrField.
func Decode(key, b []byte) (Msg, error) {
	if len(b) < len(Magic)+1 {
		return Msg{}, fmt.Errorf("heartbeat: decode: %w: %d bytes, want %d", ErrLength, len(b), MessageSize)
	}
	if string(b[:len(Magic)]) != Magic {
		return Msg{}, fmt.Errorf("heartbeat: decode: %w %q", ErrMagic, b[:len(Magic)])
	}
	body := bodySize
	switch v := b[4]; v {
	case Version:
	case LegacyVersion:
		body = legacyBodySize
	default:
		return Msg{}, fmt.Errorf("heartbeat: decode: %w %d (this node speaks %d and %d)", ErrVersion, v, LegacyVersion, Version)
	}
	if want := body + sha256.Size; len(b) != want {
		return Msg{}, fmt.Errorf("heartbeat: decode: %w: %d bytes, want %d for version %d", ErrLength, len(b), want, b[4])
	}
	if len(key) == 0 {
		return Msg{}, fmt.Errorf("heartbeat: decode: %w", ErrKey)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(b[:body])
	if !hmac.Equal(mac.Sum(nil), b[body:]) {
		return Msg{}, fmt.Errorf("heartbeat: decode: %w", ErrMAC)
	}
	m := Msg{
		State:     State(b[5]),
		Path:      b[6],
		Flags:     Flags(b[7]),
		ClusterID: binary.BigEndian.Uint64(b[8:]),
		NodeID:    binary.BigEndian.Uint32(b[16:]),
		Epoch:     binary.BigEndian.Uint64(b[20:]),
		Seq:       binary.BigEndian.Uint64(b[28:]),
		Journal:   binary.BigEndian.Uint64(b[36:]),
		Time:      int64(binary.BigEndian.Uint64(b[44:])),
		Legacy:    body == legacyBodySize,
	}
	if !m.Legacy {
		m.Ack = binary.BigEndian.Uint64(b[52:])
	}
	switch {
	case !m.State.Valid():
		return Msg{}, fmt.Errorf("heartbeat: decode: %w: state %d", ErrField, b[5])
	case m.Path >= MaxPaths:
		return Msg{}, fmt.Errorf("heartbeat: decode: %w: path %d (max %d)", ErrField, m.Path, MaxPaths-1)
	case m.Flags&^knownFlags != 0:
		return Msg{}, fmt.Errorf("heartbeat: decode: %w: unknown flags %#x", ErrField, uint8(m.Flags&^knownFlags))
	case m.NodeID == 0:
		return Msg{}, fmt.Errorf("heartbeat: decode: %w: node id 0", ErrField)
	}
	return m, nil
}
