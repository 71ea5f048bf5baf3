package rpc

import "ftnas/appliance/nfs/xdr"

// Reply layout in a request's output buffer:
//
//	[0:4)   TCP record mark (skipped for UDP)
//	[4:8)   xid
//	[8:12)  REPLY
//	[12:16) MSG_ACCEPTED / MSG_DENIED
//	accepted: verifier flavor, verifier length, accept_stat, body...
//	denied:   reject_stat, then mismatch_info or auth_stat
const (
	markLen       = 4
	acceptStatOff = markLen + 5*4 // offset of accept_stat
	bodyOff       = acceptStatOff + 4
)

// startReply resets w to a reply header for xid up to and including
// reply_stat.
func startReply(w *xdr.Writer, xid, replyStat uint32) {
	w.Truncate(0)
	w.Uint32(0) // record mark, patched when sending
	w.Uint32(xid)
	w.Uint32(msgReply)
	w.Uint32(replyStat)
}

// writeAccepted resets w to an accepted reply with stat and no body
// (the body of a Success reply is appended after it).
func writeAccepted(w *xdr.Writer, xid uint32, stat AcceptStat) {
	startReply(w, xid, msgAccepted)
	w.Uint32(FlavorNone) // verifier
	w.Uint32(0)
	w.Uint32(uint32(stat))
}

// writeProgMismatch resets w to a PROG_MISMATCH reply.
func writeProgMismatch(w *xdr.Writer, xid, low, high uint32) {
	writeAccepted(w, xid, ProgMismatch)
	w.Uint32(low)
	w.Uint32(high)
}

// writeRPCMismatch resets w to a MSG_DENIED RPC_MISMATCH reply.
func writeRPCMismatch(w *xdr.Writer, xid uint32) {
	startReply(w, xid, msgDenied)
	w.Uint32(rejectRPCMismatch)
	w.Uint32(RPCVersion)
	w.Uint32(RPCVersion)
}

// writeAuthError resets w to a MSG_DENIED AUTH_ERROR reply.
func writeAuthError(w *xdr.Writer, xid uint32, a AuthStat) {
	startReply(w, xid, msgDenied)
	w.Uint32(rejectAuthError)
	w.Uint32(uint32(a))
}
