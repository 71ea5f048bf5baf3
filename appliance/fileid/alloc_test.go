package fileid

import "testing"

// Unused gives back only the last Stamp handed out; one given back is
// handed out again with a new generation most of the time, and every
// other ID stays unique.
func TestAllocatorUnused(t *testing.T) {
	next := uint64(10)
	a := NewAllocator(func(n uint64) (uint64, error) { f := next; next += n; return f, nil })
	s1, _ := a.New()
	s2, _ := a.New()
	a.Unused(s1) // not the last: kept
	s3, _ := a.New()
	if s3.ID == s1.ID || s3.ID == s2.ID {
		t.Fatalf("New after Unused of an older Stamp gave %v again (had %v, %v)", s3, s1, s2)
	}
	a.Unused(s3)
	s4, _ := a.New()
	if s4.ID != s3.ID {
		t.Errorf("New after Unused(%v) = %v, want ID %d back", s3, s4, s3.ID)
	}
	a.Unused(Stamp{})
	s5, _ := a.New()
	if s5.ID != s4.ID+1 {
		t.Errorf("Unused of the zero Stamp changed the next ID: %v after %v", s5, s4)
	}
}
