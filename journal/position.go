package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// PositionFile keeps a standby's Position in a small file, replaced
// atomically and fsynced on every save.
type PositionFile struct {
	path string
	mu   sync.Mutex
}

// NewPositionFile returns the position kept at path.
func NewPositionFile(path string) *PositionFile { return &PositionFile{path: path} }

const positionMagic = "ftnas-journal-position/1"

// Load reads the position; a missing file is the zero Position (a fresh
// standby).
func (p *PositionFile) Load() (Position, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := os.ReadFile(p.path)
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("journal: load position: %w", err)
	}
	pos, err := parsePosition(string(b))
	if err != nil {
		return Position{}, fmt.Errorf("journal: load position %s: %w", p.path, err)
	}
	return pos, nil
}

// parsePosition parses "magic logid-hex seq epoch\n", strictly.
func parsePosition(s string) (Position, error) {
	line, ok := strings.CutSuffix(s, "\n")
	if !ok {
		return Position{}, errors.New("no final newline")
	}
	f := strings.Split(line, " ")
	if len(f) != 4 || f[0] != positionMagic {
		return Position{}, fmt.Errorf("not a %s line: %q", positionMagic, line)
	}
	var pos Position
	var err error
	if pos.LogID, err = strconv.ParseUint(f[1], 16, 64); err != nil {
		return Position{}, fmt.Errorf("log ID: %w", err)
	}
	if pos.Seq, err = strconv.ParseUint(f[2], 10, 64); err != nil {
		return Position{}, fmt.Errorf("seq: %w", err)
	}
	if pos.Epoch, err = strconv.ParseUint(f[3], 10, 64); err != nil {
		return Position{}, fmt.Errorf("epoch: %w", err)
	}
	if pos.LogID == 0 && pos.Seq != 0 {
		return Position{}, errors.New("seq without a log ID")
	}
	return pos, nil
}

func formatPosition(pos Position) string {
	return fmt.Sprintf("%s %016x %d %d\n", positionMagic, pos.LogID, pos.Seq, pos.Epoch)
}

// Save durably replaces the position.
func (p *PositionFile) Save(pos Position) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := writeFileSync(p.path, []byte(formatPosition(pos))); err != nil {
		return fmt.Errorf("journal: save position: %w", err)
	}
	return nil
}

// writeFileSync writes b to a temporary file beside path, fsyncs it, renames
// it over path and fsyncs the directory.
func writeFileSync(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly after the rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes the entries of directory dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
