package update

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"unicode/utf8"
)

// DefaultReleaseFile is where a slot image says which release it is
// (Release, JSON), written by the build (images/cmd/build).
const DefaultReleaseFile = "/etc/ftnas/release"

// MaxSerial bounds a serial: every JSON reader keeps it exact.
const MaxSerial = 1<<53 - 1

// Release is what a slot image says about itself: the human name of the
// release (shown) and its serial, the build number that orders releases
// (compared). A later build has a higher serial.
type Release struct {
	Version string `json:"version"`
	Serial  uint64 `json:"serial"`
}

func (r Release) String() string { return fmt.Sprintf("%s (serial %d)", r.Version, r.Serial) }

// ErrDowngrade marks a bundle older than the running release (a lower
// serial), refused unless the operator allows a downgrade: a trusted but
// old bundle, replayed, must not roll the box back to a release with
// known holes.
var ErrDowngrade = errors.New("older than the running release")

// ParseRelease decodes a release file: strict JSON, no unknown fields.
func ParseRelease(b []byte) (Release, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r Release
	if err := dec.Decode(&r); err != nil {
		return Release{}, fmt.Errorf("update: release: %w", err)
	}
	if dec.More() {
		return Release{}, errors.New("update: release: data after the JSON object")
	}
	if err := checkVersion(r.Version); err != nil {
		return Release{}, fmt.Errorf("update: release: %w", err)
	}
	if r.Serial > MaxSerial {
		return Release{}, fmt.Errorf("update: release: serial %d is above %d", r.Serial, uint64(MaxSerial))
	}
	return r, nil
}

// MarshalRelease encodes r as a release file (checked), one line.
func MarshalRelease(r Release) ([]byte, error) {
	if err := checkVersion(r.Version); err != nil {
		return nil, fmt.Errorf("update: release: %w", err)
	}
	if r.Serial > MaxSerial {
		return nil, fmt.Errorf("update: release: serial %d is above %d", r.Serial, uint64(MaxSerial))
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("update: release: %w", err)
	}
	return append(b, '\n'), nil
}

// ReadRelease reads the running slot's release file. A missing file
// (a slot built before releases had serials, or a development machine)
// is no error: found is false, and the release counts as serial 0.
func ReadRelease(path string) (r Release, found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Release{Version: "unknown"}, false, nil
	}
	if err != nil {
		return Release{}, false, fmt.Errorf("update: read the running release: %w", err)
	}
	r, err = ParseRelease(b)
	if err != nil {
		return Release{}, false, fmt.Errorf("%w (in %s)", err, path)
	}
	return r, true, nil
}

func checkVersion(v string) error {
	if v == "" || len(v) > maxVersion || !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("version %q: want 1-%d printable characters", v, maxVersion)
	}
	return nil
}

// Downgrade is the outcome of CheckDowngrade.
type Downgrade struct {
	Running Release
	Bundle  Release
	// Older is set when the bundle's serial is below the running one's;
	// such a bundle is written only when allowed.
	Older bool
}

// CheckDowngrade compares the bundle m with the running release: a
// bundle with a lower serial is refused (ErrDowngrade, naming both
// releases) unless allow. A bundle without a serial (format 2 before
// serials) is serial 0, so a box that runs a release with a serial
// needs allow for it; the same serial (reinstalling the running release)
// is no downgrade.
func CheckDowngrade(running Release, m Manifest, allow bool) (Downgrade, error) {
	d := Downgrade{Running: running, Bundle: Release{Version: m.Version, Serial: m.Serial}}
	if d.Bundle.Serial >= running.Serial {
		return d, nil
	}
	d.Older = true
	if allow {
		return d, nil
	}
	what := d.Bundle.String()
	if m.Serial == 0 {
		what = fmt.Sprintf("%s (no serial: built before downgrade protection, counts as serial 0)", m.Version)
	}
	return d, fmt.Errorf("update: bundle %s is %w %s: refusing a downgrade (allow it with nasctl update --allow-downgrade)", what, ErrDowngrade, running)
}
