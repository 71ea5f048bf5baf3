package rpc

import (
	"context"
	"fmt"
	"net"
	"time"

	"ftnas/appliance/nfs/xdr"
)

// RPCVersion is the only ONC RPC protocol version this package speaks.
const RPCVersion = 2

// Message types and reply states (RFC 5531 §9).
const (
	msgCall  = 0
	msgReply = 1

	msgAccepted = 0
	msgDenied   = 1

	rejectRPCMismatch = 0
	rejectAuthError   = 1
)

// Authentication flavors.
const (
	FlavorNone = 0 // AUTH_NONE
	FlavorSys  = 1 // AUTH_SYS (AUTH_UNIX)
)

// Limits on credentials (RFC 5531 §8.2 and Appendix A).
const (
	MaxAuthBytes   = 400 // opaque_auth body
	MaxMachineName = 255
	MaxAuthSysGIDs = 16
)

// AuthSys is a decoded AUTH_SYS credential.
type AuthSys struct {
	Stamp   uint32
	Machine string
	UID     uint32
	GID     uint32
	GIDs    []uint32
}

// Call is one decoded RPC call. The server reuses a Call and the buffers
// it points into once the Handler returns: a Handler must not keep c,
// c.Unix, c.Args or anything read from c.Args (opaques alias the request
// buffer) after it returns.
type Call struct {
	XID, Prog, Vers, Proc uint32
	Flavor                uint32   // FlavorNone or FlavorSys
	Unix                  *AuthSys // non-nil for AUTH_SYS
	Args                  *xdr.Reader
	Remote, Local         net.Addr
}

// AcceptStat is the status of an accepted reply (RFC 5531 accept_stat).
type AcceptStat uint32

// Accept statuses.
const (
	Success      AcceptStat = 0 // SUCCESS
	ProgUnavail  AcceptStat = 1 // PROG_UNAVAIL
	ProgMismatch AcceptStat = 2 // PROG_MISMATCH
	ProcUnavail  AcceptStat = 3 // PROC_UNAVAIL
	GarbageArgs  AcceptStat = 4 // GARBAGE_ARGS
	SystemErr    AcceptStat = 5 // SYSTEM_ERR
)

func (s AcceptStat) String() string {
	switch s {
	case Success:
		return "SUCCESS"
	case ProgUnavail:
		return "PROG_UNAVAIL"
	case ProgMismatch:
		return "PROG_MISMATCH"
	case ProcUnavail:
		return "PROC_UNAVAIL"
	case GarbageArgs:
		return "GARBAGE_ARGS"
	case SystemErr:
		return "SYSTEM_ERR"
	}
	if a, ok := s.authDenial(); ok {
		return "AUTH_ERROR(" + a.String() + ")"
	}
	return fmt.Sprintf("accept_stat(%d)", uint32(s))
}

// AuthStat is the reason for an AUTH_ERROR rejection (RFC 5531 auth_stat).
type AuthStat uint32

// Authentication statuses.
const (
	AuthOK           AuthStat = 0
	AuthBadCred      AuthStat = 1 // AUTH_BADCRED
	AuthRejectedCred AuthStat = 2 // AUTH_REJECTEDCRED
	AuthBadVerf      AuthStat = 3 // AUTH_BADVERF
	AuthRejectedVerf AuthStat = 4 // AUTH_REJECTEDVERF
	AuthTooWeak      AuthStat = 5 // AUTH_TOOWEAK
)

func (a AuthStat) String() string {
	switch a {
	case AuthOK:
		return "AUTH_OK"
	case AuthBadCred:
		return "AUTH_BADCRED"
	case AuthRejectedCred:
		return "AUTH_REJECTEDCRED"
	case AuthBadVerf:
		return "AUTH_BADVERF"
	case AuthRejectedVerf:
		return "AUTH_REJECTEDVERF"
	case AuthTooWeak:
		return "AUTH_TOOWEAK"
	}
	return fmt.Sprintf("auth_stat(%d)", uint32(a))
}

const authDenyBase = 1 << 16

// DenyAuth returns the AcceptStat a Handler returns to make the server
// reply MSG_DENIED / AUTH_ERROR with a instead of an accepted reply, e.g.
// DenyAuth(AuthTooWeak) for a call whose flavor the service does not allow.
func DenyAuth(a AuthStat) AcceptStat { return AcceptStat(authDenyBase + uint32(a)) }

func (s AcceptStat) authDenial() (AuthStat, bool) {
	if s >= authDenyBase && s < authDenyBase+256 {
		return AuthStat(s - authDenyBase), true
	}
	return 0, false
}

// Handler serves the calls of one program version.
//
// ServeRPC writes the procedure's result body into reply, which already
// holds the reply header: use offsets from reply.Len(), never absolute
// ones. If it returns anything but Success the body is discarded and the
// server sends that accept status instead (or, for DenyAuth, an
// AUTH_ERROR rejection). ctx is cancelled when the connection closes or
// the server shuts down. A panic is recovered and answered with
// SYSTEM_ERR.
type Handler interface {
	ServeRPC(ctx context.Context, c *Call, reply *xdr.Writer) AcceptStat
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, c *Call, reply *xdr.Writer) AcceptStat

// ServeRPC calls f.
func (f HandlerFunc) ServeRPC(ctx context.Context, c *Call, reply *xdr.Writer) AcceptStat {
	return f(ctx, c, reply)
}

// CallInfo describes one answered call, for metrics.
type CallInfo struct {
	Prog, Vers, Proc uint32
	Stat             AcceptStat // for a denied call: DenyAuth(reason), or ProgMismatch for an RPC version mismatch
	Denied           bool       // the reply was MSG_DENIED
	Duration         time.Duration
	InBytes          int // the call message
	OutBytes         int // the reply message
}
