package rpc

import (
	"errors"
	"fmt"
	"sync/atomic"

	"ftnas/appliance/nfs/xdr"
)

// outcome says how the server proceeds after decoding a call header.
type outcome int

const (
	outcomeDispatch    outcome = iota // header fine: find the program
	outcomeShort                      // no room for XID and message type: cannot answer
	outcomeNotCall                    // a REPLY or unknown message type: ignore
	outcomeRPCMismatch                // deny: RPC_MISMATCH
	outcomeAuthError                  // deny: AUTH_ERROR with the returned AuthStat
	outcomeGarbage                    // accept: GARBAGE_ARGS
)

// callBuf holds the storage a decoded Call points into, so decoding
// allocates nothing.
type callBuf struct {
	call Call
	auth AuthSys
	gids [MaxAuthSysGIDs]uint32
	args xdr.Reader
	cred xdr.Reader
}

// decodeCall decodes the call header of msg into cb.call (Args is left
// positioned at the procedure arguments). It returns how to proceed, the
// auth status for outcomeAuthError, and for anything but outcomeDispatch
// an error naming what was wrong. names interns AUTH_SYS machine names
// and may be nil.
func decodeCall(msg []byte, cb *callBuf, names *nameCache) (outcome, AuthStat, error) {
	r := &cb.args
	r.Reset(msg)
	c := &cb.call
	*c = Call{Args: r}
	c.XID = r.Uint32()
	mtype := r.Uint32()
	if r.Err() != nil {
		return outcomeShort, 0, fmt.Errorf("rpc: message of %d bytes has no room for XID and message type", len(msg))
	}
	if mtype != msgCall {
		return outcomeNotCall, 0, fmt.Errorf("rpc: message type %d is not CALL", mtype)
	}
	if v := r.Uint32(); v != RPCVersion {
		return outcomeRPCMismatch, 0, fmt.Errorf("rpc: RPC version %d, want %d", v, RPCVersion)
	}
	c.Prog = r.Uint32()
	c.Vers = r.Uint32()
	c.Proc = r.Uint32()
	if r.Err() != nil {
		return outcomeGarbage, 0, fmt.Errorf("rpc: call header: %w", r.Err())
	}
	c.Flavor = r.Uint32()
	cred := r.Opaque(MaxAuthBytes)
	if r.Err() != nil {
		return outcomeAuthError, AuthBadCred, fmt.Errorf("rpc: credential: %w", r.Err())
	}
	r.Uint32() // verifier flavor: ignored for AUTH_NONE and AUTH_SYS
	r.Opaque(MaxAuthBytes)
	if r.Err() != nil {
		return outcomeAuthError, AuthBadVerf, fmt.Errorf("rpc: verifier: %w", r.Err())
	}
	switch c.Flavor {
	case FlavorNone:
	case FlavorSys:
		if err := decodeAuthSys(&cb.cred, cred, &cb.auth, &cb.gids, names); err != nil {
			return outcomeAuthError, AuthBadCred, err
		}
		c.Unix = &cb.auth
	default:
		return outcomeAuthError, AuthTooWeak, fmt.Errorf("rpc: unsupported auth flavor %d", c.Flavor)
	}
	return outcomeDispatch, 0, nil
}

var errTrailingCred = errors.New("rpc: AUTH_SYS credential has trailing bytes")

// decodeAuthSys decodes an authsys_parms body (RFC 5531 Appendix A).
func decodeAuthSys(r *xdr.Reader, body []byte, a *AuthSys, gids *[MaxAuthSysGIDs]uint32, names *nameCache) error {
	r.Reset(body)
	a.Stamp = r.Uint32()
	machine := r.StringBytes(MaxMachineName)
	a.UID = r.Uint32()
	a.GID = r.Uint32()
	n := r.Uint32()
	if r.Err() == nil && n > MaxAuthSysGIDs {
		return fmt.Errorf("rpc: AUTH_SYS credential has %d gids, at most %d allowed", n, MaxAuthSysGIDs)
	}
	for i := range n {
		gids[i] = r.Uint32()
	}
	if r.Err() != nil {
		return fmt.Errorf("rpc: AUTH_SYS credential: %w", r.Err())
	}
	if r.Remaining() != 0 {
		return errTrailingCred
	}
	a.GIDs = gids[:n:n]
	a.Machine = names.intern(machine)
	return nil
}

// nameCache remembers the last machine name seen on a connection, so a
// client that sends the same AUTH_SYS machine name on every call costs no
// allocation. It is safe for concurrent use.
type nameCache struct {
	last atomic.Pointer[string]
}

func (nc *nameCache) intern(b []byte) string {
	if nc == nil {
		return string(b)
	}
	if p := nc.last.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	nc.last.Store(&s)
	return s
}
