package kernelbond

import "time"

// bounceGrace bounds how long a member may stay without carrier after
// the datapath took it down to enslave it before the loss is reported:
// a real NIC renegotiates its link when set up again (typically 1-3 s).
const bounceGrace = 5 * time.Second

// bounceFilter hides the carrier loss the datapath causes itself. The
// driver enslaves only links that are down, so Enslave sets the NIC down
// and the driver sets it up again: without the filter the controller
// saw a carrier loss, counted a failure and kept the new member out for
// its up-delay. The filter is pure; the datapath feeds it link updates
// and ticks.
type bounceFilter struct {
	expect map[string]bounce
}

type bounce struct {
	deadline time.Time
	down     bool // the loss was seen and held back
}

// expected notes that nic is about to be taken down on purpose, at now.
func (f *bounceFilter) expected(nic string, now time.Time) {
	if f.expect == nil {
		f.expect = map[string]bounce{}
	}
	f.expect[nic] = bounce{deadline: now.Add(bounceGrace)}
}

// cancel forgets an expected bounce (the enslave failed before the NIC
// went down, or it was set up again by hand).
func (f *bounceFilter) cancel(nic string) { delete(f.expect, nic) }

// pass reports whether a carrier change of nic is to be delivered. A loss
// within the grace is held back; the carrier coming back ends the bounce,
// unseen.
func (f *bounceFilter) pass(nic string, up bool, now time.Time) bool {
	b, ok := f.expect[nic]
	if !ok {
		return true
	}
	if now.After(b.deadline) {
		delete(f.expect, nic)
		return true
	}
	if up {
		delete(f.expect, nic)
		return !b.down // an up with no loss held back is news
	}
	b.down = true
	f.expect[nic] = b
	return false
}

// expired returns the NICs whose held-back loss outlived the grace: their
// carrier did not come back, and the loss is real.
func (f *bounceFilter) expired(now time.Time) []string {
	var out []string
	for nic, b := range f.expect {
		if now.After(b.deadline) {
			delete(f.expect, nic)
			if b.down {
				out = append(out, nic)
			}
		}
	}
	return out
}
