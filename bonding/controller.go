package bonding

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Controller is the pure MNCB controller: scheduler, MII fault detector and
// switcher. It is not safe for concurrent use; Agent serialises access.
type Controller struct {
	cfg        Config
	now        time.Time
	bond       *Identity // nil while unbonded
	nics       []*nic    // in the order they were added: members and NICs being checked
	active     []string  // last SetActive
	activeMode Mode
	lastProbe  time.Time
}

type nic struct {
	name         string
	ownMAC       []byte // restored by Release
	ownMTU       int
	pending      *Identity // the identity the bond will take, while the first NIC is checked
	state        State
	member       bool
	carrier      bool
	lastRx       time.Time
	healthySince time.Time
	deadline     time.Time // while Checking
	since        time.Time
	reason       string
}

// New returns a controller with no NICs (unbonded). Zero fields of cfg take
// their defaults.
func New(cfg Config) (*Controller, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Controller{cfg: cfg}, nil
}

// Config returns the controller's configuration, with the current mode.
func (c *Controller) Config() Config { return c.cfg }

// Step feeds one event to the controller and returns what to do, in order.
func (c *Controller) Step(ev Event) []Action {
	var out []Action
	switch e := ev.(type) {
	case Tick:
		out = c.tick(e.Now, out)
	case AddNIC:
		out = c.add(e.Link, out)
	case RemoveNIC:
		out = c.remove(e.NIC, out)
	case SetMode:
		out = c.setMode(e.Mode, out)
	case Carrier:
		out = c.carrier(e.NIC, e.Up, out)
	case Received:
		out = c.received(e.NIC, false, out)
	case ProbeAnswered:
		out = c.received(e.NIC, true, out)
	case Failed:
		out = c.failed(e.Action, e.Err, out)
	}
	return out
}

func (c *Controller) find(name string) *nic {
	for _, n := range c.nics {
		if n.name == name {
			return n
		}
	}
	return nil
}

func (c *Controller) drop(n *nic) {
	c.nics = slices.DeleteFunc(c.nics, func(m *nic) bool { return m == n })
}

func (c *Controller) members() int {
	k := 0
	for _, n := range c.nics {
		if n.member {
			k++
		}
	}
	return k
}

// set moves n to state s and reports the change.
func (c *Controller) set(n *nic, s State, reason string, out []Action) []Action {
	if n.state == s {
		return out
	}
	out = append(out, Changed{NIC: n.name, From: n.state, To: s, Reason: reason})
	n.state, n.since, n.reason = s, c.now, reason
	return out
}

// identityFor is the identity the bond has, or will take from n.
func (c *Controller) identityFor(n *nic) Identity {
	if c.bond != nil {
		return *c.bond
	}
	if n != nil && n.pending != nil {
		return *n.pending
	}
	return Identity{}
}

func (c *Controller) add(l LinkInfo, out []Action) []Action {
	reject := func(format string, a ...any) []Action {
		return append(out, Done{Op: "add", NIC: l.Name, Err: fmt.Errorf("bonding: add %s: "+format, append([]any{l.Name}, a...)...)})
	}
	switch {
	case l.Name == "":
		return append(out, Done{Op: "add", Err: fmt.Errorf("bonding: add: no NIC name given")})
	case c.find(l.Name) != nil:
		if n := c.find(l.Name); n.state == Checking {
			return reject("already being checked")
		}
		return reject("already in the bond")
	case !l.Exists:
		return reject("no such interface")
	case !l.Up:
		return reject("interface is down (set it up first)")
	case !l.Carrier:
		return reject("no carrier (cable unplugged or switch port down?)")
	case l.MTU <= 0:
		return reject("bad MTU %d", l.MTU)
	case len(l.MAC) != 6:
		return reject("not an Ethernet interface (hardware address %v)", l.MAC)
	}
	n := &nic{
		name:    l.Name,
		ownMAC:  slices.Clone(l.MAC),
		ownMTU:  l.MTU,
		carrier: true,
		since:   c.now,
	}
	var v4 []netip.Prefix
	for _, p := range l.Addrs {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		}
	}
	if c.bond == nil {
		if len(c.nics) > 0 {
			return reject("the primary %s is still being checked; add more NICs after it joins", c.nics[0].name)
		}
		if len(v4) == 0 {
			return reject("no IPv4 address for the bond to take (the first NIC lends the bond its address)")
		}
		n.pending = &Identity{From: l.Name, MAC: slices.Clone(l.MAC), MTU: l.MTU, Addrs: v4}
	} else if len(l.Addrs) > 0 {
		return reject("carries addresses %v; only the first NIC's addresses go to the bond, remove them first", l.Addrs)
	}
	id := c.identityFor(n)
	c.nics = append(c.nics, n)
	out = c.set(n, Checking, "added", out)
	out = append(out, Prepare{NIC: n.name, MAC: slices.Clone(id.MAC), MTU: id.MTU})
	if !c.cfg.ProbeTarget.IsValid() {
		return c.admit(n, "added (no probe target: carrier only)", out)
	}
	n.deadline = c.now.Add(c.cfg.AddTimeout)
	return append(out, c.probe(n))
}

func (c *Controller) probe(n *nic) SendProbe {
	id := c.identityFor(n)
	return SendProbe{NIC: n.name, Target: c.cfg.ProbeTarget, SrcMAC: slices.Clone(id.MAC), SrcIP: id.IPv4()}
}

// admit makes a checked NIC a member.
func (c *Controller) admit(n *nic, reason string, out []Action) []Action {
	if c.bond == nil {
		id := n.pending.clone()
		c.bond = &id
		out = append(out, CreateBond{Identity: id.clone(), Mode: c.cfg.Mode})
	}
	n.pending = nil
	n.member = true
	n.lastRx = c.now
	n.healthySince = c.now
	out = append(out, Enslave{NIC: n.name})
	out = c.set(n, Up, reason, out)
	out = c.reconcile(out)
	return append(out, Done{Op: "add", NIC: n.name})
}

// reject gives up on a NIC being checked.
func (c *Controller) reject(n *nic, err error, out []Action) []Action {
	c.drop(n)
	out = c.set(n, Gone, err.Error(), out)
	out = append(out, Done{Op: "add", NIC: n.name, Err: err})
	return append(out, Release{NIC: n.name, MAC: n.ownMAC, MTU: n.ownMTU})
}

func (c *Controller) remove(name string, out []Action) []Action {
	n := c.find(name)
	if n == nil {
		return append(out, Done{Op: "remove", NIC: name, Err: fmt.Errorf("bonding: remove %s: not in the bond", name)})
	}
	if !n.member {
		out = c.reject(n, fmt.Errorf("bonding: add %s: cancelled: removed while being checked", name), out)
		return append(out, Done{Op: "remove", NIC: name})
	}
	c.drop(n)
	n.member = false
	out = c.set(n, Gone, "removed", out)
	out = c.reconcile(out)
	out = append(out, Unenslave{NIC: name})
	if c.members() == 0 {
		// The bond dissolves: NICs still being checked lose their bond.
		for _, m := range slices.Clone(c.nics) {
			out = c.reject(m, fmt.Errorf("bonding: add %s: cancelled: the bond was dissolved", m.name), out)
		}
		out = append(out, DestroyBond{Identity: c.bond.clone(), To: name})
		c.bond = nil
		c.active = nil
	}
	out = append(out, Release{NIC: name, MAC: n.ownMAC, MTU: n.ownMTU})
	return append(out, Done{Op: "remove", NIC: name})
}

func (c *Controller) setMode(m Mode, out []Action) []Action {
	if m != LoadBalance && m != Failover {
		return append(out, Done{Op: "mode", Err: fmt.Errorf("bonding: mode: unknown mode %d", m)})
	}
	c.cfg.Mode = m
	out = c.reconcile(out)
	return append(out, Done{Op: "mode"})
}

func (c *Controller) carrier(name string, up bool, out []Action) []Action {
	n := c.find(name)
	if n == nil || n.carrier == up {
		return out
	}
	n.carrier = up
	if !up {
		n.healthySince = time.Time{}
		if !n.member {
			return c.reject(n, fmt.Errorf("bonding: add %s: lost carrier while being checked", name), out)
		}
		out = c.set(n, Down, "carrier lost", out)
		return c.reconcile(out)
	}
	if n.member && !c.cfg.ProbeTarget.IsValid() {
		n.healthySince = c.now
		out = c.set(n, Recovering, "carrier back", out)
	}
	return out
}

// received notes frames through a NIC; answered says one of them was the
// probe target's ARP reply, the only proof that admits a NIC being checked
// (any frame would do for chatter from a neighbour that cannot reach the
// target, like IPv6 router solicitations).
func (c *Controller) received(name string, answered bool, out []Action) []Action {
	n := c.find(name)
	if n == nil || !n.carrier {
		return out
	}
	n.lastRx = c.now
	switch {
	case n.state == Checking:
		if !answered {
			return out
		}
		return c.admit(n, fmt.Sprintf("reaches %v", c.cfg.ProbeTarget), out)
	case n.state == Down && c.cfg.ProbeTarget.IsValid():
		n.healthySince = c.now
		out = c.set(n, Recovering, "frames arriving again", out)
	}
	return out
}

func (c *Controller) tick(now time.Time, out []Action) []Action {
	if now.After(c.now) {
		c.now = now
	}
	probing := c.cfg.ProbeTarget.IsValid()
	silence := time.Duration(c.cfg.Misses) * c.cfg.Interval
	for _, n := range slices.Clone(c.nics) {
		switch n.state {
		case Checking:
			if Expired(n.deadline, c.now) {
				out = c.reject(n, fmt.Errorf("bonding: add %s: no ARP reply from %v through it within %v (does it reach the switch?)", n.name, c.cfg.ProbeTarget, c.cfg.AddTimeout), out)
			}
		case Up:
			if probing && Silent(n.lastRx, c.now, c.cfg.Interval, c.cfg.Misses) {
				n.healthySince = time.Time{}
				out = c.set(n, Down, fmt.Sprintf("nothing received for %v (ARP probes to %v unanswered)", silence, c.cfg.ProbeTarget), out)
			}
		case Recovering:
			if probing && Silent(n.lastRx, c.now, c.cfg.Interval, c.cfg.Misses) {
				n.healthySince = time.Time{}
				out = c.set(n, Down, fmt.Sprintf("silent again for %v", silence), out)
			} else if Settled(n.healthySince, c.now, c.cfg.UpDelay) {
				out = c.set(n, Up, fmt.Sprintf("healthy for %v", c.cfg.UpDelay), out)
			}
		}
	}
	out = c.reconcile(out)
	if probing && (c.lastProbe.IsZero() || c.now.Sub(c.lastProbe) >= c.cfg.Interval) {
		c.lastProbe = c.now
		for _, n := range c.nics {
			if n.carrier {
				out = append(out, c.probe(n))
			}
		}
	}
	return out
}

func (c *Controller) failed(a Action, err error, out []Action) []Action {
	switch a := a.(type) {
	case Prepare:
		if n := c.find(a.NIC); n != nil {
			return c.abortAdd(n, fmt.Errorf("bonding: add %s: prepare: %w", n.name, err), out)
		}
	case CreateBond:
		if n := c.find(a.Identity.From); n != nil {
			c.bond = nil // nothing was created
			return c.abortAdd(n, fmt.Errorf("bonding: add %s: create bond: %w", n.name, err), out)
		}
	case Enslave:
		if n := c.find(a.NIC); n != nil {
			return c.abortAdd(n, fmt.Errorf("bonding: add %s: enslave: %w", n.name, err), out)
		}
	case Unenslave:
		return append(out, Done{Op: "remove", NIC: a.NIC, Err: fmt.Errorf("bonding: remove %s: unenslave: %w", a.NIC, err)})
	case DestroyBond:
		return append(out, Done{Op: "remove", NIC: a.To, Err: fmt.Errorf("bonding: remove %s: dissolve bond: %w", a.To, err)})
	case Release:
		return append(out, Done{Op: "remove", NIC: a.NIC, Err: fmt.Errorf("bonding: remove %s: release: %w", a.NIC, err)})
	}
	return out
}

// abortAdd undoes an add the datapath could not carry out. The datapath
// stopped at the failed action, so n may already count as a member here but
// not there.
func (c *Controller) abortAdd(n *nic, err error, out []Action) []Action {
	if !n.member {
		return c.reject(n, err, out)
	}
	n.member = false
	c.drop(n)
	out = c.set(n, Gone, err.Error(), out)
	out = c.reconcile(out)
	out = append(out, Done{Op: "add", NIC: n.name, Err: err})
	if c.members() == 0 && c.bond != nil {
		out = append(out, DestroyBond{Identity: c.bond.clone(), To: n.name})
		c.bond, c.active = nil, nil
	}
	return append(out, Release{NIC: n.name, MAC: n.ownMAC, MTU: n.ownMTU})
}

// reconcile recomputes the NICs carrying traffic and emits SetActive (and,
// in failover mode, Announce) when they change.
func (c *Controller) reconcile(out []Action) []Action {
	var want []string
	switch c.cfg.Mode {
	case LoadBalance:
		for _, n := range c.nics {
			if n.member && n.state == Up {
				want = append(want, n.name)
			}
		}
	case Failover:
		for _, n := range c.nics {
			if n.member && n.state == Up {
				want = []string{n.name} // the primary when up, else the first up
				break
			}
		}
	}
	if slices.Equal(want, c.active) && c.cfg.Mode == c.activeMode {
		return out
	}
	c.active, c.activeMode = want, c.cfg.Mode
	out = append(out, SetActive{NICs: slices.Clone(want), Mode: c.cfg.Mode})
	if c.cfg.Mode == Failover && len(want) > 0 && c.bond != nil {
		out = append(out, Announce{NIC: want[0], Identity: c.bond.clone()})
	}
	return out
}

// NICStatus is one NIC's state.
type NICStatus struct {
	Name    string
	State   State
	Primary bool
	Active  bool // carrying outgoing traffic
	Carrier bool
	Since   time.Time // when it entered State
	Reason  string    // why it entered State
}

// Status is a snapshot of the bond (nasctl bond status).
type Status struct {
	Mode        Mode
	Bonded      bool
	Identity    Identity // valid when Bonded
	ProbeTarget netip.Addr
	Active      []string
	NICs        []NICStatus
}

// Status returns a snapshot of the bond.
func (c *Controller) Status() Status {
	s := Status{Mode: c.cfg.Mode, ProbeTarget: c.cfg.ProbeTarget, Active: slices.Clone(c.active)}
	if c.bond != nil {
		s.Bonded = true
		s.Identity = c.bond.clone()
	}
	primary := true
	for _, n := range c.nics {
		st := NICStatus{Name: n.name, State: n.state, Carrier: n.carrier, Since: n.since, Reason: n.reason,
			Active: slices.Contains(c.active, n.name)}
		if n.member && primary {
			st.Primary, primary = true, false
		}
		s.NICs = append(s.NICs, st)
	}
	return s
}
