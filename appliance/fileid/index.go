package fileid

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// bucketName is the index's bucket in the state database.
var bucketName = []byte("fileid.index")

// Loc is where an ID lives: the ID of its parent directory and its name there.
// The volume root has Parent 0 and Name ".".
type Loc struct {
	Parent uint64
	Name   string
}

// maxBatch bounds how many index changes one transaction commits.
const maxBatch = 4096

// cacheSize bounds each generation of the in-memory cache.
const cacheSize = 1 << 18

// Index maps IDs to locations. Writes are queued and committed by one writer
// goroutine in group commits; reads see queued writes at once.
type Index struct {
	db  *bolt.DB
	log *slog.Logger

	mu      sync.Mutex
	pending map[uint64]*Loc // nil value: delete queued
	cur     map[uint64]Loc  // two-generation cache: cur, then prev
	prev    map[uint64]Loc
	kick    chan struct{}
	flushed *sync.Cond // signalled after each commit
	gen     uint64     // commits started
	done    uint64     // commits finished
	err     error      // last commit error
	closed  bool
	stopped chan struct{}
}

// OpenIndex opens (creating if needed) the index in db and starts its writer.
func OpenIndex(db *bolt.DB, log *slog.Logger) (*Index, error) {
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketName)
		return err
	}); err != nil {
		return nil, fmt.Errorf("fileid: open index: %w", err)
	}
	x := &Index{
		db: db, log: log,
		pending: make(map[uint64]*Loc),
		cur:     make(map[uint64]Loc),
		prev:    make(map[uint64]Loc),
		kick:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	x.flushed = sync.NewCond(&x.mu)
	go x.writer()
	return x, nil
}

// Put records that id lives at loc.
func (x *Index) Put(id uint64, loc Loc) {
	x.mu.Lock()
	l := loc
	x.pending[id] = &l
	x.cacheLocked(id, loc)
	x.signalLocked()
	x.mu.Unlock()
}

// Delete forgets id.
func (x *Index) Delete(id uint64) {
	x.mu.Lock()
	x.pending[id] = nil
	delete(x.cur, id)
	delete(x.prev, id)
	x.signalLocked()
	x.mu.Unlock()
}

// Get returns where id lives, if the index knows.
func (x *Index) Get(id uint64) (Loc, bool, error) {
	x.mu.Lock()
	if l, ok := x.pending[id]; ok {
		x.mu.Unlock()
		if l == nil {
			return Loc{}, false, nil
		}
		return *l, true, nil
	}
	if l, ok := x.cur[id]; ok {
		x.mu.Unlock()
		return l, true, nil
	}
	if l, ok := x.prev[id]; ok {
		x.cacheLocked(id, l)
		x.mu.Unlock()
		return l, true, nil
	}
	x.mu.Unlock()
	var loc Loc
	var found bool
	err := x.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketName).Get(idKey(id))
		if v == nil {
			return nil
		}
		l, err := decodeLoc(v)
		loc, found = l, err == nil
		return err
	})
	if err != nil {
		return Loc{}, false, fmt.Errorf("fileid: index get %d: %w", id, err)
	}
	if found {
		x.mu.Lock()
		if _, queued := x.pending[id]; !queued {
			x.cacheLocked(id, loc)
		}
		x.mu.Unlock()
	}
	return loc, found, nil
}

// Flush waits until every queued change is committed, or a commit fails.
func (x *Index) Flush() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for (len(x.pending) > 0 || x.done < x.gen) && !x.closed {
		x.signalLocked()
		before := x.done
		x.flushed.Wait()
		if x.err != nil && x.done > before {
			return x.err
		}
	}
	return x.err
}

// Close commits what is queued and stops the writer.
func (x *Index) Close() error {
	err := x.Flush()
	x.mu.Lock()
	if !x.closed {
		x.closed = true
		close(x.kick)
	}
	x.mu.Unlock()
	<-x.stopped
	return err
}

// signalLocked wakes the writer; x.mu is held, so kick is not closed.
func (x *Index) signalLocked() {
	if x.closed {
		return
	}
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

func (x *Index) cacheLocked(id uint64, loc Loc) {
	if len(x.cur) >= cacheSize {
		x.prev, x.cur = x.cur, make(map[uint64]Loc, cacheSize/4)
	}
	x.cur[id] = loc
}

// writer commits queued changes, as many as are waiting, one transaction at a
// time: the group commit.
func (x *Index) writer() {
	defer close(x.stopped)
	for range x.kick {
		for {
			x.mu.Lock()
			if len(x.pending) == 0 {
				x.mu.Unlock()
				break
			}
			batch := make(map[uint64]*Loc, min(len(x.pending), maxBatch))
			for id, l := range x.pending {
				batch[id] = l
				delete(x.pending, id)
				if len(batch) == maxBatch {
					break
				}
			}
			x.gen++
			x.mu.Unlock()

			err := x.db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketName)
				for id, l := range batch {
					var err error
					if l == nil {
						err = b.Delete(idKey(id))
					} else {
						err = b.Put(idKey(id), encodeLoc(*l))
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
			x.mu.Lock()
			if err != nil {
				x.err = fmt.Errorf("fileid: index commit of %d changes: %w", len(batch), err)
				x.log.Error("index commit failed; the reconciling scan repairs it at next start", "err", err)
				// Re-queue what has not been superseded, so a transient
				// failure loses nothing.
				for id, l := range batch {
					if _, newer := x.pending[id]; !newer {
						x.pending[id] = l
					}
				}
			} else {
				x.err = nil
			}
			x.done++
			x.flushed.Broadcast()
			x.mu.Unlock()
			if err != nil {
				break
			}
		}
	}
	x.mu.Lock()
	x.done = x.gen
	x.flushed.Broadcast()
	x.mu.Unlock()
}

// All calls fn for each committed entry; used by the reconciling scan.
func (x *Index) All(fn func(id uint64, loc Loc) error) error {
	return x.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketName).ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return errors.New("fileid: index: bad key length")
			}
			l, err := decodeLoc(v)
			if err != nil {
				return err
			}
			return fn(binary.BigEndian.Uint64(k), l)
		})
	})
}

func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func encodeLoc(l Loc) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(l.Name)), l.Parent)
	return append(b, l.Name...)
}

func decodeLoc(v []byte) (Loc, error) {
	if len(v) < 9 {
		return Loc{}, fmt.Errorf("fileid: index: entry of %d bytes is too short", len(v))
	}
	return Loc{Parent: binary.BigEndian.Uint64(v), Name: string(v[8:])}, nil
}
