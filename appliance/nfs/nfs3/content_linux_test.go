package nfs3

import (
	"fmt"
	"sync"
	"testing"

	"ftnas/appliance/fileid"

	nfsc "github.com/willscott/go-nfs-client/nfs"
)

// recorder is a ContentObserver that notes every call.
type recorder struct {
	mu     sync.Mutex
	next   uint64
	open   map[uint64]fileid.Stamp
	events []string
}

func (r *recorder) note(format string, args ...any) {
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) BeginChange(st fileid.Stamp) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	r.open[r.next] = st
	return r.next
}

func (r *recorder) end(st fileid.Stamp, id uint64, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open[id] != st {
		r.note("end %d of %v: begun for %v", id, st, r.open[id])
	}
	delete(r.open, id)
	r.note("%s", what)
}

func (r *recorder) EndWrite(st fileid.Stamp, id uint64, off int64, data []byte) {
	r.end(st, id, fmt.Sprintf("write %d %q", off, data))
}

func (r *recorder) EndTruncate(st fileid.Stamp, id uint64, size int64) {
	r.end(st, id, fmt.Sprintf("truncate %d", size))
}

func (r *recorder) EndUnknown(st fileid.Stamp, id uint64) { r.end(st, id, "unknown") }

func (r *recorder) Born(fileid.Stamp) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.note("born")
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	if len(r.open) > 0 {
		ev = append(ev, fmt.Sprintf("%d changes not ended", len(r.open)))
	}
	return ev
}

// Every change to a file's contents is told to Options.Content, bracketed,
// with the bytes written.
func TestContentObserver(t *testing.T) {
	n := newNode(t, media)
	rec := &recorder{open: map[uint64]fileid.Stamp{}}
	n.content = rec
	n.restart()
	tg := n.mount("/media", 0, 0)
	check := func(what string, want ...string) {
		t.Helper()
		got := rec.take()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: told %q, want %q", what, got, want)
		}
	}

	f, err := tg.OpenFile("a", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	check("create", "born")
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	check("write", `write 0 "hello"`)

	if err := tg.Setattr("a", nfsc.Sattr3{Size: nfsc.SetSize{SetIt: true, Size: 2}}); err != nil {
		t.Fatal(err)
	}
	check("setattr size", "truncate 2")
	if err := tg.Setattr("a", nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: 0o600}}); err != nil {
		t.Fatal(err)
	}
	check("setattr mode")
}
