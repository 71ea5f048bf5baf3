package replica

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	steps := []struct {
		progress bool
		want     time.Duration
	}{
		{false, 100 * time.Millisecond},
		{false, 200 * time.Millisecond},
		{false, 400 * time.Millisecond},
		{false, 800 * time.Millisecond},
		{false, time.Second},
		{false, time.Second},
		{true, 100 * time.Millisecond},
		{false, 200 * time.Millisecond},
	}
	for i, s := range steps {
		if got := b.next(s.progress); got != s.want {
			t.Errorf("step %d (progress %v): %v, want %v", i, s.progress, got, s.want)
		}
	}
}
