package raid

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
)

func TestHashESP(t *testing.T) {
	l, err := Plan([]Disk{{Name: "vda", Size: 64 * MiB}, {Name: "vdb", Size: 64 * MiB}},
		LayoutOptions{ESPSize: 2 * MiB, RootSize: 4 * MiB, StateSize: MiB, MinData: MiB})
	if err != nil {
		t.Fatal(err)
	}
	esp, ok := l.Disks[0].Partition(RoleESP)
	if !ok || esp.Start != MiB || esp.Size != 2*MiB {
		t.Fatalf("ESP = %+v, %v", esp, ok)
	}
	disk := func(fill byte) []byte {
		b := make([]byte, 64*MiB)
		for i := esp.Start; i < esp.Start+esp.Size; i += 4096 {
			b[i] = fill
		}
		return b
	}
	a, b := disk(1), disk(1)
	b[esp.Start+esp.Size] = 9 // outside the ESP: does not count
	ha, err := HashESP(bytes.NewReader(a), l.Disks[0])
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(a[esp.Start : esp.Start+esp.Size])
	if ha != hex.EncodeToString(want[:]) {
		t.Errorf("HashESP = %s, want the SHA-256 of the ESP's bytes", ha)
	}
	if hb, _ := HashESP(bytes.NewReader(b), l.Disks[1]); hb != ha {
		t.Errorf("a byte outside the ESP changed its hash")
	}
	b[esp.Start+esp.Size-1] = 7 // the ESP's last byte
	if hb, _ := HashESP(bytes.NewReader(b), l.Disks[1]); hb == ha {
		t.Errorf("a changed last ESP byte left the hash alone")
	}
	if _, err := HashESP(bytes.NewReader(a[:esp.Start+esp.Size-1]), l.Disks[0]); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short disk: %v, want ErrUnexpectedEOF", err)
	}
	if _, err := HashESP(bytes.NewReader(a), DiskLayout{Disk: "x"}); err == nil {
		t.Error("a layout without an ESP hashed")
	}
}
