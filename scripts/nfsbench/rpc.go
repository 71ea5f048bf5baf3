package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ONC RPC (RFC 5531) constants.
const (
	rpcVersion = 2

	msgCall  = 0
	msgReply = 1

	replyAccepted = 0
	replyDenied   = 1

	authNone = 0
	authSys  = 1

	lastFragment = 1 << 31
	// maxRecord bounds a reply record: the largest READ we ask for is a few
	// MiB, so anything far beyond is a broken stream, not data.
	maxRecord = 64 << 20
)

var acceptStatNames = map[uint32]string{
	1: "PROG_UNAVAIL",
	2: "PROG_MISMATCH",
	3: "PROC_UNAVAIL",
	4: "GARBAGE_ARGS",
	5: "SYSTEM_ERR",
}

// authSysCred is an AUTH_SYS credential (RFC 5531 appendix A).
type authSysCred struct {
	Machine string
	UID     uint32
	GID     uint32
	GIDs    []uint32
}

// encodeCallHeader appends an RPC CALL header with an AUTH_SYS credential
// and an AUTH_NONE verifier; the procedure arguments follow.
func encodeCallHeader(e *encoder, xid, prog, vers, proc uint32, cred authSysCred) {
	e.uint32(xid)
	e.uint32(msgCall)
	e.uint32(rpcVersion)
	e.uint32(prog)
	e.uint32(vers)
	e.uint32(proc)
	var body encoder
	body.uint32(0) // stamp
	body.string(cred.Machine)
	body.uint32(cred.UID)
	body.uint32(cred.GID)
	body.uint32(uint32(len(cred.GIDs)))
	for _, g := range cred.GIDs {
		body.uint32(g)
	}
	e.uint32(authSys)
	e.opaque(body.b)
	e.uint32(authNone)
	e.uint32(0)
}

// rpcError is a reply that carries no procedure results (denied, or
// accepted with a status other than SUCCESS).
type rpcError struct {
	msg string
}

func (e *rpcError) Error() string { return "rpc: " + e.msg }

// parseReply decodes an RPC REPLY record. It returns the xid and the
// procedure results. A non-nil callErr is a well-formed reply saying the
// call failed (it belongs to that xid); a non-nil err means the record is
// not a valid reply and the stream cannot be trusted.
func parseReply(rec []byte) (xid uint32, results []byte, callErr, err error) {
	d := decoder{b: rec}
	xid = d.uint32()
	mtype := d.uint32()
	if d.err != nil {
		return 0, nil, nil, fmt.Errorf("rpc: reply header: %w", d.err)
	}
	if mtype != msgReply {
		return xid, nil, nil, fmt.Errorf("rpc: xid %#x: message type %d, want REPLY (1)", xid, mtype)
	}
	switch stat := d.uint32(); stat {
	case replyAccepted:
		d.uint32()           // verifier flavor
		d.opaque(400)        // verifier body
		accept := d.uint32() // accept_stat
		if d.err != nil {
			return xid, nil, nil, fmt.Errorf("rpc: xid %#x: accepted reply: %w", xid, d.err)
		}
		if accept == 0 {
			return xid, d.rest(), nil, nil
		}
		name := acceptStatNames[accept]
		if name == "" {
			return xid, nil, nil, fmt.Errorf("rpc: xid %#x: unknown accept status %d", xid, accept)
		}
		if accept == 2 {
			lo, hi := d.uint32(), d.uint32()
			if d.err != nil {
				return xid, nil, nil, fmt.Errorf("rpc: xid %#x: PROG_MISMATCH: %w", xid, d.err)
			}
			return xid, nil, &rpcError{fmt.Sprintf("PROG_MISMATCH (server supports versions %d..%d)", lo, hi)}, nil
		}
		return xid, nil, &rpcError{name}, nil
	case replyDenied:
		switch rs := d.uint32(); rs {
		case 0:
			lo, hi := d.uint32(), d.uint32()
			if d.err != nil {
				return xid, nil, nil, fmt.Errorf("rpc: xid %#x: RPC_MISMATCH: %w", xid, d.err)
			}
			return xid, nil, &rpcError{fmt.Sprintf("denied: RPC_MISMATCH (server supports RPC versions %d..%d)", lo, hi)}, nil
		case 1:
			as := d.uint32()
			if d.err != nil {
				return xid, nil, nil, fmt.Errorf("rpc: xid %#x: AUTH_ERROR: %w", xid, d.err)
			}
			return xid, nil, &rpcError{fmt.Sprintf("denied: AUTH_ERROR (auth_stat %d)", as)}, nil
		default:
			if d.err != nil {
				return xid, nil, nil, fmt.Errorf("rpc: xid %#x: denied reply: %w", xid, d.err)
			}
			return xid, nil, nil, fmt.Errorf("rpc: xid %#x: unknown reject status %d", xid, rs)
		}
	default:
		if d.err != nil {
			return xid, nil, nil, fmt.Errorf("rpc: xid %#x: reply status: %w", xid, d.err)
		}
		return xid, nil, nil, fmt.Errorf("rpc: xid %#x: unknown reply status %d", xid, stat)
	}
}

// readRecord reads one record-marked RPC message (RFC 5531 section 11),
// joining fragments, and refuses records longer than max bytes.
func readRecord(r io.Reader, max int) ([]byte, error) {
	var rec []byte
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if len(rec) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		h := binary.BigEndian.Uint32(hdr[:])
		n := int(h &^ lastFragment)
		if len(rec)+n > max {
			return nil, fmt.Errorf("rpc: record of more than %d bytes (fragment of %d after %d)", max, n, len(rec))
		}
		start := len(rec)
		rec = append(rec, make([]byte, n)...)
		if _, err := io.ReadFull(r, rec[start:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("rpc: read fragment of %d bytes: %w", n, err)
		}
		if h&lastFragment != 0 {
			return rec, nil
		}
	}
}

type callResult struct {
	results []byte
	err     error
}

// client is an RPC client over one TCP connection. Any number of
// goroutines may call concurrently: requests are pipelined and replies
// matched by xid.
type client struct {
	addr string
	conn net.Conn
	cred authSysCred

	wmu sync.Mutex // serialises record writes

	mu      sync.Mutex
	pending map[uint32]chan callResult
	dead    error // set once the connection failed

	xid atomic.Uint32
}

func dialRPC(addr string, cred authSysCred, timeout time.Duration) (*client, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("rpc: dial %s: %w", addr, err)
	}
	c := &client{addr: addr, conn: conn, cred: cred, pending: make(map[uint32]chan callResult)}
	c.xid.Store(uint32(time.Now().UnixNano()))
	go c.readLoop()
	return c, nil
}

func (c *client) Close() error {
	err := c.conn.Close()
	c.shutdown(errors.New("connection closed"))
	return err
}

func (c *client) shutdown(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead == nil {
		c.dead = err
	}
	for xid, ch := range c.pending {
		ch <- callResult{err: fmt.Errorf("rpc %s: %w", c.addr, c.dead)}
		delete(c.pending, xid)
	}
}

func (c *client) readLoop() {
	br := bufio.NewReaderSize(c.conn, 1<<20)
	for {
		rec, err := readRecord(br, maxRecord)
		if err != nil {
			c.shutdown(fmt.Errorf("read reply: %w", err))
			c.conn.Close()
			return
		}
		xid, results, callErr, err := parseReply(rec)
		if err != nil {
			c.shutdown(err)
			c.conn.Close()
			return
		}
		c.mu.Lock()
		ch, ok := c.pending[xid]
		delete(c.pending, xid)
		c.mu.Unlock()
		if !ok {
			c.shutdown(fmt.Errorf("reply with unknown xid %#x", xid))
			c.conn.Close()
			return
		}
		ch <- callResult{results: results, err: callErr}
	}
}

// call sends one request and waits for its reply. args appends the
// procedure arguments. The returned bytes are the procedure results.
func (c *client) call(prog, vers, proc uint32, sizeHint int, args func(*encoder)) ([]byte, error) {
	xid := c.xid.Add(1)
	e := encoder{b: make([]byte, 4, 4+128+len(c.cred.Machine)+sizeHint)}
	encodeCallHeader(&e, xid, prog, vers, proc, c.cred)
	if args != nil {
		args(&e)
	}
	binary.BigEndian.PutUint32(e.b, lastFragment|uint32(len(e.b)-4))

	ch := make(chan callResult, 1)
	c.mu.Lock()
	if c.dead != nil {
		err := c.dead
		c.mu.Unlock()
		return nil, fmt.Errorf("rpc %s: %w", c.addr, err)
	}
	c.pending[xid] = ch
	c.mu.Unlock()

	c.wmu.Lock()
	_, err := c.conn.Write(e.b)
	c.wmu.Unlock()
	if err != nil {
		c.shutdown(fmt.Errorf("write request: %w", err))
		c.conn.Close()
	}
	r := <-ch
	return r.results, r.err
}
