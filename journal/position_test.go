package journal

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPositionFile(t *testing.T) {
	p := NewPositionFile(filepath.Join(t.TempDir(), "pos"))
	if pos, err := p.Load(); err != nil || pos != (Position{}) {
		t.Fatalf("missing file: %+v, %v", pos, err)
	}
	want := Position{LogID: 0xfeed, Seq: 12, Epoch: 3}
	if err := p.Save(want); err != nil {
		t.Fatal(err)
	}
	if pos, err := NewPositionFile(p.path).Load(); err != nil || pos != want {
		t.Fatalf("Load = %+v, %v", pos, err)
	}
	for _, bad := range []string{"", "x\n", positionMagic + " 1 2 3", positionMagic + " 0 2 3\n", positionMagic + " zz 2 3\n"} {
		if err := os.WriteFile(p.path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Load(); err == nil {
			t.Errorf("Load accepted %q", bad)
		}
	}
}
