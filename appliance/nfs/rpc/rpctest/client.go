package rpctest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"ftnas/appliance/nfs/xdr"
)

// Cred is an opaque_auth: a flavor and its body.
type Cred struct {
	Flavor uint32
	Body   []byte
}

// None is the AUTH_NONE credential.
var None = Cred{}

// Sys returns an AUTH_SYS credential.
func Sys(machine string, uid, gid uint32, gids ...uint32) Cred {
	w := xdr.NewWriter(nil)
	w.Uint32(0) // stamp
	w.String(machine)
	w.Uint32(uid)
	w.Uint32(gid)
	w.Uint32(uint32(len(gids)))
	for _, g := range gids {
		w.Uint32(g)
	}
	return Cred{Flavor: 1, Body: w.Bytes()}
}

// EncodeCall returns an RPC version 2 call message (without record mark)
// with an AUTH_NONE verifier.
func EncodeCall(xid, prog, vers, proc uint32, cred Cred, args []byte) []byte {
	return EncodeCallVersion(xid, 2, prog, vers, proc, cred, args)
}

// EncodeCallVersion is EncodeCall with a chosen RPC protocol version.
func EncodeCallVersion(xid, rpcvers, prog, vers, proc uint32, cred Cred, args []byte) []byte {
	w := xdr.NewWriter(make([]byte, 0, 64+len(cred.Body)+len(args)))
	w.Uint32(xid)
	w.Uint32(0) // CALL
	w.Uint32(rpcvers)
	w.Uint32(prog)
	w.Uint32(vers)
	w.Uint32(proc)
	w.Uint32(cred.Flavor)
	w.Opaque(cred.Body)
	w.Uint32(0) // verifier AUTH_NONE
	w.Uint32(0)
	w.FixedOpaque(args) // args are already XDR, a multiple of 4
	return w.Bytes()
}

// Frame returns msg with record marking, split into fragments of at most
// fragSize bytes (0 for a single fragment).
func Frame(msg []byte, fragSize int) []byte {
	if fragSize <= 0 || fragSize > len(msg) {
		fragSize = max(len(msg), 0)
	}
	var out []byte
	for first := true; first || len(msg) > 0; first = false {
		n := min(fragSize, len(msg))
		h := uint32(n)
		if n == len(msg) {
			h |= 1 << 31
		}
		out = binary.BigEndian.AppendUint32(out, h)
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// Reply is a decoded reply message.
type Reply struct {
	XID        uint32
	Accepted   bool   // MSG_ACCEPTED; otherwise MSG_DENIED
	Stat       uint32 // accept_stat if Accepted, else reject_stat (0 RPC_MISMATCH, 1 AUTH_ERROR)
	AuthStat   uint32 // for AUTH_ERROR
	Low, High  uint32 // for PROG_MISMATCH and RPC_MISMATCH
	VerfFlavor uint32
	Body       *xdr.Reader // results of a SUCCESS reply
	Raw        []byte      // the whole reply message
}

// ParseReply decodes a reply message.
func ParseReply(b []byte) (*Reply, error) {
	r := xdr.NewReader(b)
	rep := &Reply{Raw: b, XID: r.Uint32()}
	if mt := r.Uint32(); r.Err() == nil && mt != 1 {
		return nil, fmt.Errorf("rpctest: message type %d is not REPLY", mt)
	}
	switch rs := r.Uint32(); rs {
	case 0:
		rep.Accepted = true
		rep.VerfFlavor = r.Uint32()
		r.Opaque(400)
		rep.Stat = r.Uint32()
		if rep.Stat == 2 {
			rep.Low, rep.High = r.Uint32(), r.Uint32()
		}
	case 1:
		rep.Stat = r.Uint32()
		switch rep.Stat {
		case 0:
			rep.Low, rep.High = r.Uint32(), r.Uint32()
		case 1:
			rep.AuthStat = r.Uint32()
		}
	default:
		if r.Err() == nil {
			return nil, fmt.Errorf("rpctest: reply_stat %d", rs)
		}
	}
	if r.Err() != nil {
		return nil, fmt.Errorf("rpctest: reply: %w", r.Err())
	}
	rep.Body = r
	return rep, nil
}

// ReadRecord reads one record-marked record from r.
func ReadRecord(r io.Reader) ([]byte, error) {
	var rec []byte
	for {
		var h [4]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return nil, err
		}
		v := binary.BigEndian.Uint32(h[:])
		n := int(v &^ (1 << 31))
		if n > 64<<20 {
			return nil, fmt.Errorf("rpctest: fragment of %d bytes", n)
		}
		l := len(rec)
		rec = append(rec, make([]byte, n)...)
		if _, err := io.ReadFull(r, rec[l:]); err != nil {
			return nil, err
		}
		if v&(1<<31) != 0 {
			return rec, nil
		}
	}
}

// Client is a test RPC client over one TCP connection or UDP socket. Call
// is for one call at a time; Send and Recv pipeline. A Client is not safe
// for concurrent use except that one goroutine may Send while another
// Recvs.
type Client struct {
	conn    net.Conn
	udp     bool
	br      *bufio.Reader
	xid     atomic.Uint32
	Timeout time.Duration // per Call/Recv; default 10s
}

// Dial connects to addr over network ("tcp" or "udp").
func Dial(network, addr string) (*Client, error) {
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("rpctest: dial %s %s: %w", network, addr, err)
	}
	cl := &Client{conn: c, udp: network != "tcp" && network != "tcp4" && network != "tcp6", br: bufio.NewReader(c), Timeout: 10 * time.Second}
	cl.xid.Store(uint32(time.Now().UnixNano()))
	return cl, nil
}

// Conn returns the underlying connection, for raw writes.
func (c *Client) Conn() net.Conn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// NextXID returns a fresh XID.
func (c *Client) NextXID() uint32 { return c.xid.Add(1) }

// Send sends a call with the given XID.
func (c *Client) Send(xid, prog, vers, proc uint32, cred Cred, args []byte) error {
	return c.SendRaw(EncodeCall(xid, prog, vers, proc, cred, args))
}

// SendRaw sends a call message, record-marked on TCP.
func (c *Client) SendRaw(msg []byte) error {
	if !c.udp {
		msg = Frame(msg, 0)
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.Timeout))
	if _, err := c.conn.Write(msg); err != nil {
		return fmt.Errorf("rpctest: send: %w", err)
	}
	return nil
}

// Recv reads the next reply.
func (c *Client) Recv() (*Reply, error) {
	c.conn.SetReadDeadline(time.Now().Add(c.Timeout))
	var b []byte
	if c.udp {
		b = make([]byte, 65536)
		n, err := c.conn.Read(b)
		if err != nil {
			return nil, fmt.Errorf("rpctest: recv: %w", err)
		}
		b = b[:n]
	} else {
		var err error
		if b, err = ReadRecord(c.br); err != nil {
			return nil, fmt.Errorf("rpctest: recv: %w", err)
		}
	}
	return ParseReply(b)
}

// Call sends one call and returns its reply.
func (c *Client) Call(prog, vers, proc uint32, cred Cred, args []byte) (*Reply, error) {
	xid := c.NextXID()
	if err := c.Send(xid, prog, vers, proc, cred, args); err != nil {
		return nil, err
	}
	rep, err := c.Recv()
	if err != nil {
		return nil, err
	}
	if rep.XID != xid {
		return nil, fmt.Errorf("rpctest: reply XID %#x, want %#x", rep.XID, xid)
	}
	return rep, nil
}

// Result calls and returns the body of a SUCCESS reply, or an error
// describing any other reply.
func (c *Client) Result(prog, vers, proc uint32, cred Cred, args []byte) (*xdr.Reader, error) {
	rep, err := c.Call(prog, vers, proc, cred, args)
	if err != nil {
		return nil, err
	}
	if !rep.Accepted || rep.Stat != 0 {
		return nil, &ReplyError{rep}
	}
	return rep.Body, nil
}

// ReplyError describes a reply that is not SUCCESS.
type ReplyError struct{ Reply *Reply }

func (e *ReplyError) Error() string {
	r := e.Reply
	if r.Accepted {
		return fmt.Sprintf("rpctest: accept_stat %d", r.Stat)
	}
	if r.Stat == 1 {
		return fmt.Sprintf("rpctest: denied: auth_stat %d", r.AuthStat)
	}
	return fmt.Sprintf("rpctest: denied: reject_stat %d", r.Stat)
}

// IsReplyError reports whether err is a ReplyError.
func IsReplyError(err error) bool {
	var re *ReplyError
	return errors.As(err, &re)
}
