package tickle

import (
	"net/netip"
	"time"
)

// Interval is the pause between tickle rounds. It is below the kernel's
// default per-socket rate limit for out-of-window ACK answers (500 ms), so
// a lost round is retried soon without the client being asked more often
// than it answers.
const Interval = 100 * time.Millisecond

// Report says what Tickle achieved.
type Report struct {
	// Reset are the connections whose client answered a tickle and got
	// an RST: they are gone on the client.
	Reset []Conn
	// Unanswered never answered: the client is down or unreachable, or
	// the connection no longer existed there (its kernel then answers
	// with an RST of its own, which is just as good).
	Unanswered []Conn
}

// killer is the pure bookkeeping of one Tickle run: which connections
// still wait for an answer.
type killer struct {
	pending map[Conn]bool
	order   []Conn
	reset   []Conn
}

func newKiller(conns []Conn) *killer {
	k := &killer{pending: make(map[Conn]bool)}
	for _, c := range conns {
		c = Conn{VIP: unmap(c.VIP), Client: unmap(c.Client)}
		if !k.pending[c] {
			k.pending[c] = true
			k.order = append(k.order, c)
		}
	}
	return k
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// tickles are the ACKs to send this round.
func (k *killer) tickles() []segment {
	var out []segment
	for _, c := range k.order {
		if k.pending[c] {
			out = append(out, tickleSegment(c))
		}
	}
	return out
}

// observe takes a captured segment and returns the RST to send for it,
// if it answers a pending connection.
func (k *killer) observe(s segment) (segment, bool) {
	c := Conn{VIP: s.Dst, Client: s.Src}
	if !k.pending[c] {
		return segment{}, false
	}
	rst, ok := resetFor(c, s)
	if !ok {
		return segment{}, false
	}
	delete(k.pending, c)
	k.reset = append(k.reset, c)
	return rst, true
}

func (k *killer) done() bool { return len(k.pending) == 0 }

func (k *killer) report() Report {
	r := Report{Reset: k.reset}
	for _, c := range k.order {
		if k.pending[c] {
			r.Unanswered = append(r.Unanswered, c)
		}
	}
	return r
}
