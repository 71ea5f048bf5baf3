package fileid

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// allocChunk is how many IDs are reserved from the store at a time; a crash
// skips at most this many, and IDs are never reused.
const allocChunk = 1024

// Reserve persistently reserves n IDs and returns the first.
type Reserve func(n uint64) (first uint64, err error)

// Allocator hands out fresh Stamps from reserved ID ranges.
type Allocator struct {
	reserve   Reserve
	mu        sync.Mutex
	next, end uint64
}

// NewAllocator returns an allocator drawing ranges from reserve.
func NewAllocator(reserve Reserve) *Allocator { return &Allocator{reserve: reserve} }

// New returns a Stamp that has never been handed out. The generation is
// random, so even an ID reissued after a state file was restored from an old
// backup does not match handles of the file that had it before.
func (a *Allocator) New() (Stamp, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == a.end {
		first, err := a.reserve(allocChunk)
		if err != nil {
			return Stamp{}, fmt.Errorf("fileid: reserve IDs: %w", err)
		}
		if first == 0 {
			return Stamp{}, fmt.Errorf("fileid: reserve IDs: store returned ID 0")
		}
		a.next, a.end = first, first+allocChunk
	}
	id := a.next
	a.next++
	return Stamp{ID: id, Gen: rand.Uint32()}, nil
}

// Unused gives back st, just handed out by New and written nowhere (a
// stamp refused because the file had one), if no later Stamp was handed
// out since: IDs stay dense, and none is ever handed out twice once
// written.
func (a *Allocator) Unused(st Stamp) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st.ID != 0 && st.ID+1 == a.next {
		a.next--
	}
}
