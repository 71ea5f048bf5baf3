package portmap

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"

	"ftnas/appliance/nfs/rpc"
	"ftnas/appliance/nfs/xdr"
)

// Program and version of the portmapper.
const (
	Prog = 100000
	Vers = 2
	Port = 111
)

// Procedures of portmapper version 2.
const (
	ProcNull    = 0
	ProcSet     = 1
	ProcUnset   = 2
	ProcGetport = 3
	ProcDump    = 4
	ProcCallit  = 5
)

// Transport protocol numbers.
const (
	TCP = 6
	UDP = 17
)

// Mapping maps a program version on a transport protocol to a port.
type Mapping struct {
	Prog, Vers, Prot, Port uint32 // Prot: TCP (6) or UDP (17)
}

func (m Mapping) String() string {
	return fmt.Sprintf("prog %d vers %d prot %d port %d", m.Prog, m.Vers, m.Prot, m.Port)
}

// Portmap is the mapping table. It is safe for concurrent use.
type Portmap struct {
	log *slog.Logger
	mu  sync.Mutex
	m   []Mapping // sorted by Prog, Vers, Prot
}

// New returns an empty Portmap.
func New(log *slog.Logger) *Portmap {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Portmap{log: log}
}

func key(m Mapping) [3]uint32 { return [3]uint32{m.Prog, m.Vers, m.Prot} }

func (p *Portmap) find(m Mapping) (int, bool) {
	return slices.BinarySearchFunc(p.m, key(m), func(e Mapping, k [3]uint32) int {
		ek := key(e)
		return slices.Compare(ek[:], k[:])
	})
}

// Set registers m, replacing any mapping for the same program, version
// and protocol. It is nasd's own registration and always succeeds.
func (p *Portmap) Set(m Mapping) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, found := p.find(m)
	if found {
		p.m[i] = m
		return
	}
	p.m = slices.Insert(p.m, i, m)
}

// set is the protocol's SET: it fails if the triple is already mapped.
func (p *Portmap) set(m Mapping) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, found := p.find(m)
	if found {
		return false
	}
	p.m = slices.Insert(p.m, i, m)
	return true
}

// Unset removes every mapping of prog and vers (all protocols) and
// reports whether there was one.
func (p *Portmap) Unset(prog, vers uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.m)
	p.m = slices.DeleteFunc(p.m, func(e Mapping) bool { return e.Prog == prog && e.Vers == vers })
	return len(p.m) != n
}

// Getport returns the port of prog and vers on protocol prot, or 0. Like
// the classic portmapper, when that version is not registered it returns
// the port of another version of the program on the same protocol, so
// that the caller learns the supported versions from PROG_MISMATCH.
func (p *Portmap) Getport(prog, vers, prot uint32) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var other uint32
	for _, e := range p.m {
		if e.Prog != prog || e.Prot != prot {
			continue
		}
		if e.Vers == vers {
			return e.Port
		}
		if other == 0 {
			other = e.Port
		}
	}
	return other
}

// List returns a copy of all mappings, sorted by program, version and
// protocol.
func (p *Portmap) List() []Mapping {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.m)
}

// Handler returns the rpc.Handler for program Prog version Vers.
func (p *Portmap) Handler() rpc.Handler { return rpc.HandlerFunc(p.serve) }

// DecodeMapping reads a mapping argument (RFC 1833 struct mapping).
func DecodeMapping(r *xdr.Reader) (Mapping, error) {
	m := Mapping{Prog: r.Uint32(), Vers: r.Uint32(), Prot: r.Uint32(), Port: r.Uint32()}
	if err := r.Err(); err != nil {
		return Mapping{}, fmt.Errorf("portmap: mapping: %w", err)
	}
	if r.Remaining() != 0 {
		return Mapping{}, fmt.Errorf("portmap: mapping: %d trailing bytes", r.Remaining())
	}
	return m, nil
}

func encodeMapping(w *xdr.Writer, m Mapping) {
	w.Uint32(m.Prog)
	w.Uint32(m.Vers)
	w.Uint32(m.Prot)
	w.Uint32(m.Port)
}

func isLoopback(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UDPAddr:
		return a.IP.IsLoopback()
	}
	return false
}

func (p *Portmap) serve(ctx context.Context, c *rpc.Call, w *xdr.Writer) rpc.AcceptStat {
	switch c.Proc {
	case ProcNull:
		return rpc.Success
	case ProcDump:
		for _, m := range p.List() {
			w.Bool(true)
			encodeMapping(w, m)
		}
		w.Bool(false)
		return rpc.Success
	case ProcSet, ProcUnset, ProcGetport:
	default:
		return rpc.ProcUnavail
	}
	m, err := DecodeMapping(c.Args)
	if err != nil {
		p.log.Debug("portmap: bad arguments", "proc", c.Proc, "remote", c.Remote, "err", err)
		return rpc.GarbageArgs
	}
	switch c.Proc {
	case ProcGetport:
		w.Uint32(p.Getport(m.Prog, m.Vers, m.Prot))
	case ProcSet, ProcUnset:
		if !isLoopback(c.Remote) {
			p.log.Warn("portmap: refused a registration change from a non-loopback address", "proc", c.Proc, "remote", fmt.Sprint(c.Remote), "mapping", m.String())
			w.Bool(false)
			return rpc.Success
		}
		var ok bool
		if c.Proc == ProcSet {
			ok = m.Prot == TCP || m.Prot == UDP
			ok = ok && p.set(m)
		} else {
			ok = p.Unset(m.Prog, m.Vers)
		}
		p.log.Info("portmap: registration change", "proc", c.Proc, "remote", fmt.Sprint(c.Remote), "mapping", m.String(), "ok", ok)
		w.Bool(ok)
	}
	return rpc.Success
}
