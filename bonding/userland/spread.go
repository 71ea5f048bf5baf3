package userland

// spreader picks the member each outgoing frame leaves through: the one
// that has sent the fewest bytes since the member set last changed
// (byte-balanced round robin; ties go round in order). Counting frames
// instead let frames of different sizes (GSO frames of 1.5 to 64 KiB)
// pile up unevenly, so members' queues differed in delay and TCP saw
// more reordering, hence more spurious retransmits, than balanced
// queues give. It is pure and owned by the TAP goroutine.
type spreader struct {
	sent []uint64
	next int // where the search for the least loaded starts (ties)
}

// reset starts over with n members.
func (s *spreader) reset(n int) {
	if cap(s.sent) < n {
		s.sent = make([]uint64, n)
	}
	s.sent = s.sent[:n]
	clear(s.sent)
	s.next = 0
}

// pick returns the member for a frame of size bytes and counts it.
func (s *spreader) pick(size int) int {
	n := len(s.sent)
	best := s.next % n
	for k := 1; k < n; k++ {
		if i := (s.next + k) % n; s.sent[i] < s.sent[best] {
			best = i
		}
	}
	s.sent[best] += uint64(size)
	s.next = best + 1
	if s.sent[best] >= 1<<62 { // keep the counters far from wrapping
		low := s.sent[0]
		for _, v := range s.sent {
			low = min(low, v)
		}
		for i := range s.sent {
			s.sent[i] -= low
		}
	}
	return best
}
