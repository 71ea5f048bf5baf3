package capture

import (
	"testing"

	"ftnas/appliance/fileid"
)

func attached(t *testing.T) (*WriteHints, *int) {
	t.Helper()
	h := NewWriteHints()
	wakes := new(int)
	h.attach(func() { *wakes++ })
	return h, wakes
}

func TestWriteHintsComplete(t *testing.T) {
	h, _ := attached(t)
	st := fileid.Stamp{ID: 5, Gen: 1}
	buf := []byte("abc")
	id := h.BeginChange(st)
	h.EndWrite(st, id, 10, buf)
	buf[0] = 'X' // the server reuses its buffer
	id = h.BeginChange(st)
	h.EndTruncate(st, id, 4)
	tk, ok := h.take(st, false)
	if !ok || tk.lost || tk.pending || len(tk.hints) != 2 {
		t.Fatalf("take = %+v %v, want two hints", tk, ok)
	}
	if x := tk.hints[0]; x.trunc || x.off != 10 || string(x.data) != "abc" {
		t.Errorf("first hint %+v, want abc at 10 (copied)", x)
	}
	if x := tk.hints[1]; !x.trunc || x.size != 4 {
		t.Errorf("second hint %+v, want truncate to 4", x)
	}
	if s := h.Stats(); s.Files != 0 || s.Bytes != 0 || s.Shipped != 2 {
		t.Errorf("stats after take %+v: want nothing held, 2 shipped", s)
	}
	if _, ok := h.take(st, false); ok {
		t.Error("taken twice")
	}
}

func TestWriteHintsPending(t *testing.T) {
	h, wakes := attached(t)
	st := fileid.Stamp{ID: 5, Gen: 1}
	id1 := h.BeginChange(st)
	h.EndWrite(st, id1, 0, []byte("one"))
	id2 := h.BeginChange(st)
	tk, ok := h.take(st, false)
	if !ok || !tk.pending || len(tk.hints) != 1 || string(tk.hints[0].data) != "one" {
		t.Fatalf("take with one in flight = %+v, want the first, pending", tk)
	}
	if got := h.ready(func(fileid.Stamp) bool { return true }); len(got) != 0 {
		t.Errorf("ready while in flight: %v", got)
	}
	h.EndWrite(st, id2, 3, []byte("two"))
	if *wakes != 1 {
		t.Errorf("%d wakes after the awaited change ended, want 1", *wakes)
	}
	if got := h.ready(func(fileid.Stamp) bool { return true }); len(got) != 1 || got[0] != st {
		t.Errorf("ready = %v, want %v", got, st)
	}
	tk, _ = h.take(st, false)
	if tk.pending || len(tk.hints) != 1 || string(tk.hints[0].data) != "two" {
		t.Errorf("second take = %+v", tk)
	}
}

func TestWriteHintsLost(t *testing.T) {
	st := fileid.Stamp{ID: 5, Gen: 1}
	for _, c := range []struct {
		name string
		do   func(h *WriteHints)
	}{
		{"failed", func(h *WriteHints) { h.EndUnknown(st, h.BeginChange(st)) }},
		{"two in flight", func(h *WriteHints) {
			a := h.BeginChange(st)
			b := h.BeginChange(st)
			h.EndWrite(st, b, 0, []byte("b"))
			h.EndWrite(st, a, 0, []byte("a"))
		}},
		{"too many", func(h *WriteHints) {
			for i := 0; i <= maxHintsPerFile; i++ {
				h.EndWrite(st, h.BeginChange(st), int64(i), []byte("x"))
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, _ := attached(t)
			h.EndWrite(st, h.BeginChange(st), 0, []byte("kept?"))
			c.do(h)
			tk, ok := h.take(st, false)
			if !ok || !tk.lost || len(tk.hints) != 0 {
				t.Fatalf("take = %+v %v, want lost", tk, ok)
			}
			h.fetched(st)
			if _, ok := h.take(st, false); ok {
				t.Error("still held after the fetch")
			}
			if s := h.Stats(); s.Bytes > DefaultMaxHintBytes {
				t.Errorf("%d bytes held, over the bound", s.Bytes)
			}
		})
	}
}

// Writes too large to hold, or beyond the room for data, keep their range
// (the standby fetches it).
func TestWriteHintsRangeOnly(t *testing.T) {
	st := fileid.Stamp{ID: 5, Gen: 1}
	for _, c := range []struct {
		name string
		do   func(h *WriteHints)
	}{
		{"write over the per-write bound", func(h *WriteHints) {
			h.EndWrite(st, h.BeginChange(st), 7, make([]byte, DefaultMaxHintWrite+1))
		}},
		{"over the total bound", func(h *WriteHints) {
			for i := 0; i <= DefaultMaxHintBytes/DefaultMaxHintWrite; i++ {
				s := fileid.Stamp{ID: uint64(100 + i), Gen: 1}
				h.EndWrite(s, h.BeginChange(s), 0, make([]byte, DefaultMaxHintWrite))
			}
			h.EndWrite(st, h.BeginChange(st), 7, make([]byte, DefaultMaxHintWrite))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, _ := attached(t)
			c.do(h)
			if s := h.Stats(); s.Bytes > DefaultMaxHintBytes || s.RangeOnly == 0 {
				t.Errorf("stats %+v: want a write kept without data, at most the bound held", s)
			}
			tk, ok := h.take(st, false)
			if !ok || tk.lost || len(tk.hints) != 1 || tk.hints[0].data != nil || tk.hints[0].off != 7 || tk.hints[0].n < DefaultMaxHintWrite {
				t.Fatalf("take = %+v %v, want the range without data", tk, ok)
			}
			if inlineFits(0, tk.hints) {
				t.Error("a write without data fits inline")
			}
		})
	}
}

// A file fetched while a change of it is in flight is fetched again once
// it has ended: the change is never shipped after the fetch.
func TestWriteHintsFetchedInFlight(t *testing.T) {
	h, wakes := attached(t)
	st := fileid.Stamp{ID: 5, Gen: 1}
	id := h.BeginChange(st)
	h.fetched(st)
	h.EndWrite(st, id, 0, []byte("late"))
	if *wakes != 1 {
		t.Errorf("%d wakes, want 1", *wakes)
	}
	tk, ok := h.take(st, false)
	if !ok || !tk.lost {
		t.Fatalf("take = %+v %v, want lost (fetch again)", tk, ok)
	}
}

func TestWriteHintsBorn(t *testing.T) {
	h, _ := attached(t)
	a, b := fileid.Stamp{ID: 5, Gen: 1}, fileid.Stamp{ID: 6, Gen: 1}
	h.Born(a)
	h.EndWrite(a, h.BeginChange(a), 0, []byte("x"))
	h.EndWrite(b, h.BeginChange(b), 0, []byte("y"))
	if tk, _ := h.take(a, true); tk.lost || !tk.born || len(tk.hints) != 1 {
		t.Errorf("born file: take = %+v", tk)
	}
	if tk, _ := h.take(b, true); !tk.lost {
		t.Errorf("file not born, new to the standby: take = %+v, want lost", tk)
	}
}

// Hints of files the capture never sees expire; files it has are kept
// until taken; nothing is recorded while no capture is attached.
func TestWriteHintsNoLeak(t *testing.T) {
	h, _ := attached(t)
	seen, unseen := fileid.Stamp{ID: 5, Gen: 1}, fileid.Stamp{ID: 6, Gen: 1}
	h.EndWrite(seen, h.BeginChange(seen), 0, []byte("x"))
	h.EndWrite(unseen, h.BeginChange(unseen), 0, []byte("y"))
	inModel := func(st fileid.Stamp) bool { return st == seen }
	for range maxHintAbsent + 1 {
		h.sweep(inModel)
	}
	if s := h.Stats(); s.Files != 1 || s.Bytes != 1 || s.Expired != 1 {
		t.Fatalf("after sweeps: %+v, want only the seen file held", s)
	}
	h.Born(seen)
	h.take(seen, false)
	h.Born(seen) // nothing but Born: dropped once the model has it
	h.sweep(inModel)
	if s := h.Stats(); s.Files != 0 {
		t.Fatalf("after take and sweep: %+v, want none", s)
	}
	gen := h.attach(nil)
	h.detach(gen - 1) // an older capture's Close: no effect
	h.EndWrite(seen, h.BeginChange(seen), 0, []byte("x"))
	h.detach(gen)
	if s := h.Stats(); s.Files != 0 {
		t.Fatalf("detached: %+v, want nothing held", s)
	}
	if id := h.BeginChange(seen); id != 0 {
		t.Errorf("detached: BeginChange = %d, want 0", id)
	}
	h.EndWrite(seen, 0, 0, []byte("x"))
	if s := h.Stats(); s.Files != 0 {
		t.Fatalf("detached: %+v", s)
	}
}
