package replica

import "time"

// backoff is the delay before the next connection attempt: it doubles
// after each failed attempt, from min up to max, and starts over after a
// session that made progress.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

// next returns the delay before the next attempt, after a session that
// made progress or not.
func (b *backoff) next(progress bool) time.Duration {
	if progress || b.cur == 0 {
		b.cur = b.min
		return b.cur
	}
	b.cur = min(b.cur*2, b.max)
	return b.cur
}
