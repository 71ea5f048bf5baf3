package changelog

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// encodeEvents is the inverse of Parse, for tests: records padded to 4
// bytes as the kernel does.
func encodeEvents(evs []Event) []byte {
	var out []byte
	for _, ev := range evs {
		var info []byte
		for _, r := range ev.Records {
			rec := make([]byte, 4, 64)
			rec[0] = r.Type
			rec = binary.LittleEndian.AppendUint64(rec, r.FSID)
			rec = binary.LittleEndian.AppendUint32(rec, uint32(len(r.Handle.Bytes)))
			rec = binary.LittleEndian.AppendUint32(rec, uint32(r.Handle.Type))
			rec = append(rec, r.Handle.Bytes...)
			if r.Type == InfoDFIDName || r.Type == InfoOldDFIDName || r.Type == InfoNewDFIDName {
				rec = append(rec, r.Name...)
				rec = append(rec, 0)
			}
			for len(rec)%4 != 0 {
				rec = append(rec, 0)
			}
			binary.LittleEndian.PutUint16(rec[2:], uint16(len(rec)))
			info = append(info, rec...)
		}
		m := make([]byte, fanMetaLen)
		binary.LittleEndian.PutUint32(m[0:], uint32(fanMetaLen+len(info)))
		m[4] = fanMetaVersion
		binary.LittleEndian.PutUint16(m[6:], fanMetaLen)
		binary.LittleEndian.PutUint64(m[8:], ev.Mask)
		binary.LittleEndian.PutUint32(m[16:], uint32(ev.FD))
		binary.LittleEndian.PutUint32(m[20:], uint32(ev.Pid))
		out = append(out, m...)
		out = append(out, info...)
	}
	return out
}

func readCapture(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseCaptured decodes buffers this kernel produced (see
// TestCaptureSeeds for the commands that made them).
func TestParseCaptured(t *testing.T) {
	for _, fs := range []string{"ext4", "btrfs"} {
		evs, err := Parse(readCapture(t, "notify-"+fs+".bin"))
		if err != nil {
			t.Fatalf("%s: %v", fs, err)
		}
		var creates, renames, selfAttrib, fidOnly int
		var names []string
		for _, ev := range evs {
			if ev.FD != fanNoFD || ev.Pid <= 0 {
				t.Errorf("%s: event fd %d pid %d", fs, ev.FD, ev.Pid)
			}
			if _, ok := ev.Record(InfoFID); !ok && !ev.IsDir() {
				t.Errorf("%s: event %#x without the object's FID", fs, ev.Mask)
			}
			if r, ok := ev.Record(InfoDFIDName); ok {
				names = append(names, r.Name)
				if r.Name == "." && ev.Mask == fanAttrib|fanOnDir {
					selfAttrib++
				}
			} else if len(ev.Records) == 1 {
				fidOnly++
			}
			if ev.Mask&fanCreate != 0 {
				creates++
			}
			if ev.Mask&fanRename != 0 {
				o, ok1 := ev.Record(InfoOldDFIDName)
				n, ok2 := ev.Record(InfoNewDFIDName)
				if !ok1 || !ok2 {
					t.Fatalf("%s: rename without both names: %+v", fs, ev)
				}
				names = append(names, o.Name+">"+n.Name)
				renames++
			}
		}
		joined := strings.Join(names, " ")
		for _, w := range []string{"s", "d", "f", "g>h", "d>e", "."} {
			if !strings.Contains(" "+joined+" ", " "+w+" ") {
				t.Errorf("%s: name %q missing in %s", fs, w, joined)
			}
		}
		if creates < 5 || renames != 2 || selfAttrib != 1 || fidOnly == 0 {
			t.Errorf("%s: creates %d renames %d self-attrib %d fid-only %d", fs, creates, renames, selfAttrib, fidOnly)
		}

		evs, err = Parse(readCapture(t, "overflow-"+fs+".bin"))
		if err != nil {
			t.Fatalf("%s overflow: %v", fs, err)
		}
		if last := evs[len(evs)-1]; !last.Overflow() || len(last.Records) != 0 || last.FD != fanNoFD {
			t.Errorf("%s: last event of a full queue %+v, want an overflow", fs, last)
		}
	}
	evs, err := Parse(readCapture(t, "perm-ext4.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Mask != fanOpenPerm || evs[0].FD < 0 || evs[0].Pid <= 0 || len(evs[0].Records) != 0 {
		t.Errorf("permission event %+v", evs)
	}
}

func TestParseRoundTrip(t *testing.T) {
	evs := []Event{
		{Mask: fanCreate | fanOnDir, FD: fanNoFD, Pid: 42, Records: []Record{
			{Type: InfoDFIDName, FSID: 7, Handle: Handle{Type: 1, Bytes: []byte{1, 2, 3, 4, 5, 6, 7, 8}}, Name: "dir"},
			{Type: InfoFID, FSID: 7, Handle: Handle{Type: 1, Bytes: []byte{9, 9}}},
		}},
		{Mask: fanRename, FD: fanNoFD, Pid: 43, Records: []Record{
			{Type: InfoOldDFIDName, FSID: 7, Handle: Handle{Type: 77, Bytes: []byte{1}}, Name: "a"},
			{Type: InfoNewDFIDName, FSID: 7, Handle: Handle{Type: 77, Bytes: []byte{2}}, Name: "bcd"},
		}},
		{Mask: fanQOverflow, FD: fanNoFD},
	}
	got, err := Parse(encodeEvents(evs))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, evs) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, evs)
	}
}

func TestParseErrors(t *testing.T) {
	good := encodeEvents([]Event{{Mask: fanCreate, FD: fanNoFD, Records: []Record{
		{Type: InfoDFIDName, Handle: Handle{Type: 1, Bytes: []byte{1, 2, 3, 4}}, Name: "f"},
	}}})
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"short metadata", good[:10], "metadata needs 24"},
		{"version", mod(func(b []byte) []byte { b[4] = 2; return b }), "metadata version 2"},
		{"metadata_len", mod(func(b []byte) []byte { b[6] = 8; return b }), "metadata_len 8"},
		{"event_len below metadata", mod(func(b []byte) []byte { b[0] = 16; return b }), "event_len 16 below"},
		{"event_len past buffer", good[:len(good)-4], "truncated"},
		{"record len", mod(func(b []byte) []byte { b[fanMetaLen+2] = 2; return b }), "len 2 outside"},
		{"record past event", mod(func(b []byte) []byte { b[fanMetaLen+2] = 200; return b }), "len 200 outside"},
		{"handle_bytes", mod(func(b []byte) []byte { b[fanMetaLen+12] = 100; return b }), "handle_bytes 100"},
		{"name unterminated", mod(func(b []byte) []byte { b[len(b)-3], b[len(b)-2], b[len(b)-1] = 'x', 'y', 'z'; return b }), "not NUL-terminated"},
		{"name with slash", mod(func(b []byte) []byte { b[len(b)-4] = '/'; return b }), `bad entry name "/"`},
		{"empty name", mod(func(b []byte) []byte { b[len(b)-4] = 0; return b }), `bad entry name ""`},
		{"header cut", append(mod(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b, uint32(len(b)+2))
			return b
		}), 2, 0), "info record header"},
	}
	for _, c := range cases {
		_, err := Parse(c.b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
	// Events before a bad one are returned with the error.
	evs, err := Parse(append(append([]byte(nil), good...), good[:30]...))
	if err == nil || len(evs) != 1 || !strings.Contains(err.Error(), fmt.Sprintf("offset %d", len(good))) {
		t.Errorf("partial parse: %d events, %v", len(evs), err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"notify-ext4.bin", "notify-btrfs.bin", "overflow-ext4.bin", "overflow-btrfs.bin", "perm-ext4.bin"} {
		f.Add(readCapture(f, name))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := Parse(b)
		if err != nil {
			return
		}
		// What parses re-encodes to something that parses the same.
		again, err := Parse(encodeEvents(evs))
		if err != nil {
			t.Fatalf("re-encoded events do not parse: %v", err)
		}
		if len(again) != len(evs) {
			t.Fatalf("re-encoded: %d events, want %d", len(again), len(evs))
		}
		for i := range evs {
			if !reflect.DeepEqual(normal(again[i]), normal(evs[i])) {
				t.Fatalf("event %d: %+v after re-encoding, was %+v", i, again[i], evs[i])
			}
		}
	})
}

// normal makes empty and nil slices compare equal.
func normal(e Event) Event {
	if len(e.Records) == 0 {
		e.Records = nil
	}
	for i := range e.Records {
		if len(e.Records[i].Handle.Bytes) == 0 {
			e.Records[i].Handle.Bytes = nil
		}
	}
	return e
}

// hexKey is the hex of Key, also for a handle longer than the kernel's.
func TestHandleHexKey(t *testing.T) {
	for _, h := range []Handle{
		{},
		{Type: 1, Bytes: []byte{0xde, 0xad}},
		{Type: -2, Bytes: make([]byte, maxHandleBytes)},
		{Type: 0x4d, Bytes: make([]byte, maxHandleBytes+5)},
	} {
		if got, want := h.hexKey(), hex.EncodeToString([]byte(h.Key())); got != want {
			t.Errorf("hexKey(%d, %d bytes) = %s, want %s", h.Type, len(h.Bytes), got, want)
		}
	}
}
