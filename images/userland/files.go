package userland

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"ftnas/images/guest"
	"ftnas/images/rootfs"
	"ftnas/images/watchdog"
)

// Go main packages the userland holds.
const (
	NasdPackage   = "ftnas/cmd/nasd"
	NasctlPackage = "ftnas/cmd/nasctl"
	InitPackage   = "ftnas/images/userland/init"
)

// Paths in the image. /sbin is a link to usr/sbin in Debian's merged
// /usr, so InitPath is what the initramfs executes as /sbin/init.
const (
	InitPath     = "/usr/sbin/init"
	NasdPath     = "/usr/sbin/nasd"
	NasctlPath   = "/usr/bin/nasctl"
	ManifestPath = "/etc/ftnas/packages"
	Hostname     = "ftnas"
)

// Where nasd keeps its state and its volume: tmpfs for now (the overlays
// on /var and /srv), not yet the state and data arrays.
const (
	StateDir = "/var/lib/ftnas"
	Volume   = "/srv/ftnas"
)

// Binaries are the ftnas programs, built static for linux/amd64.
type Binaries struct {
	Nasd, Nasctl, Init string
}

// Files are what SlotImage adds to the Debian tree. manifest is the
// package=version list of the tree.
func Files(b Binaries, manifest []byte) ([]rootfs.File, error) {
	for _, f := range []struct{ name, path string }{{"nasd", b.Nasd}, {"nasctl", b.Nasctl}, {"init", b.Init}} {
		if f.path == "" {
			return nil, fmt.Errorf("userland: no %s binary", f.name)
		}
	}
	return []rootfs.File{
		{Path: InitPath, Source: b.Init, Mode: 0o755},
		{Path: NasdPath, Source: b.Nasd, Mode: 0o755},
		{Path: NasctlPath, Source: b.Nasctl, Mode: 0o755},
		{Path: ManifestPath, Data: manifest},
		{Path: "/etc/hostname", Data: []byte(Hostname + "\n")},
		{Path: "/etc/hosts", Data: []byte("127.0.0.1\tlocalhost\n127.0.1.1\t" + Hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n")},
		// systemd-less: nothing makes one, and an image must not carry
		// the build machine's.
		{Path: "/etc/machine-id", Data: []byte{}},
	}, nil
}

// OverlayDirs are the directories the slot's init makes writable with a
// tmpfs overlay: system accounts (/etc), Samba's and nasd's state (/var),
// the volume (/srv) and root's home.
func OverlayDirs() []string { return []string{"/etc", "/var", "/srv", "/root"} }

// Kernel command line parameters the slot's init reads.
const (
	// ParamIP is the first NIC's address with its prefix length.
	ParamIP = "ftnas.ip"
	// ParamGateway is the default route's gateway ("none": no route).
	ParamGateway = "ftnas.gw"
	// ParamTestShare, a test hook, makes an NFS share of that name once
	// nasd serves and writes TestOutsideFile and TestFile into it.
	ParamTestShare = "ftnas.test_share"
	// ParamTestUpdate, a test hook, names a block device (/dev/vdc), or
	// several separated by commas: once nasd serves and the slot is
	// blessed, the init runs `nasctl update DEVICE` for each device that
	// is there, in order, prints UpdateLinePrefix and the result (FAILED:
	// ... for a refused one), and reboots after the first that succeeds.
	ParamTestUpdate = "ftnas.test_update"
	// ParamWatchdog is the hardware watchdog's timeout in seconds
	// (default 30; 0 or off: no watchdog). The init feeds /dev/watchdog
	// while nasd is healthy (package watchdog).
	ParamWatchdog = "ftnas.watchdog"
	// ParamWatchdogGrace is how long, in seconds, nasd may fail its
	// health probes before the watchdog is no longer fed (default 60).
	ParamWatchdogGrace = "ftnas.watchdog_grace"
	// ParamTestHangNasd, a test hook (1), stops nasd with SIGSTOP once it
	// serves and the slot is blessed, and prints HangLine: the watchdog
	// should then reset the box.
	ParamTestHangNasd = "ftnas.test_hang_nasd"
	// ParamTestInstall, a test hook, is DISK,DISK...:BUNDLE
	// (vdb,vdc:/dev/vdd): once nasd serves and the slot is blessed, the
	// init runs `nasctl install --disks /dev/DISK,... --bundle BUNDLE
	// --yes` when BUNDLE is there, prints InstallLinePrefix and the
	// result, and powers off. The install does not carry it (nor
	// ParamTestUpdate) to the new box's entries.
	ParamTestInstall = "ftnas.test_install"
)

// Console lines about the watchdog.
const (
	// WatchdogPrefix starts the line the init prints when it opened the
	// watchdog: "ftnas: watchdog /dev/watchdog identity=... timeout=30s
	// grace=1m0s", or "ftnas: watchdog none: ..." / "off".
	WatchdogPrefix = "ftnas: watchdog "
	// HangLine is printed by the test hook after it stopped nasd.
	HangLine = "ftnas: test: nasd frozen with SIGSTOP"
)

// WatchdogRegexp matches the line of an open watchdog: device, identity,
// timeout.
func WatchdogRegexp() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(WatchdogPrefix) + `(/\S+) identity="([^"]*)" timeout=(\S+) grace=(\S+)\r?$`)
}

// Console lines of the slot's init about updates.
const (
	// BlessPrefix starts the line that says what blessing the booted
	// entry did: "ftnas: boot entry blessed slot=b booted=... found=...
	// entry=..." (see update.BlessResult).
	BlessPrefix = "ftnas: boot entry "
	// UpdateLinePrefix starts the test hook's line with nasctl's output.
	UpdateLinePrefix = "ftnas: test update: "
	// InstallLinePrefix starts the install test hook's line.
	InstallLinePrefix = "ftnas: test install: "
)

// BlessRegexp matches the bless line: state, slot, booted entry, the
// entry found on the ESP, the entry now.
func BlessRegexp() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(BlessPrefix) + `(\S+) slot=(\S+) booted=(\S+) found=(\S+) entry=(\S+)\r?$`)
}

// UpdateRegexp matches the test hook's line; the submatch is nasctl's
// output (one line).
func UpdateRegexp() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(UpdateLinePrefix) + `(.*?)\r?$`)
}

// InstallRegexp matches the install test hook's line; the submatch is
// nasctl's output (one line).
func InstallRegexp() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(InstallLinePrefix) + `(.*?)\r?$`)
}

// TestInstall is the install test hook's request.
type TestInstall struct {
	Disks  []string // /dev/vdb, ...
	Bundle string
}

// NasctlInstallArgs is the install test hook's command.
func NasctlInstallArgs(ti TestInstall) []string {
	return []string{NasctlPath, "install", "--disks", strings.Join(ti.Disks, ","), "--bundle", ti.Bundle, "--yes"}
}

// ParseTestInstall reads ParamTestInstall's value.
func ParseTestInstall(v string) (TestInstall, error) {
	disks, bundle, ok := strings.Cut(v, ":")
	var ti TestInstall
	if !ok || !strings.HasPrefix(bundle, "/dev/") || strings.Contains(bundle, "..") {
		return ti, fmt.Errorf("userland: %s=%q: want DISK,DISK...:/dev/BUNDLE", ParamTestInstall, v)
	}
	for _, d := range strings.Split(disks, ",") {
		if d == "" || strings.ContainsAny(d, "/.") {
			return ti, fmt.Errorf("userland: %s=%q: bad disk %q", ParamTestInstall, v, d)
		}
		ti.Disks = append(ti.Disks, "/dev/"+d)
	}
	ti.Bundle = bundle
	return ti, nil
}

// NasctlUpdateArgs is the test hook's update command.
func NasctlUpdateArgs(file string) []string { return []string{NasctlPath, "update", file} }

// TestFile is the file the test hook writes into the test share, and
// TestContent what it holds for slot s.
const TestFile = "hello.txt"

// TestContent is TestFile's content on slot s.
func TestContent(slot string) string { return "hello from ftnas slot " + slot + "\n" }

// TestOutsideFile is a second file the test hook writes into the test
// share (before TestFile), in a directory of its own so that a listing
// of the share's root does not meet it: the first NFS call to meet it
// can be a LOOKUP (the power-cut test's case). TestOutsideContent is
// what it holds.
const (
	TestOutsideFile    = "outside/outside.txt"
	TestOutsideContent = "written outside nasd by the test hook\n"
)

// TestUpdateDevices are the test hook's devices, in order.
func (o InitOptions) TestUpdateDevices() []string {
	if o.TestUpdate == "" {
		return nil
	}
	return strings.Split(o.TestUpdate, ",")
}

// InitOptions are the slot init's settings.
type InitOptions struct {
	Address   netip.Prefix
	Gateway   netip.Addr // invalid: no default route
	TestShare string
	// TestUpdate is the block device the test hook updates from, or
	// several separated by commas (TestUpdateDevices).
	TestUpdate string
	// Watchdog is the hardware watchdog's timeout (0: none);
	// WatchdogGrace how long nasd may be unhealthy.
	Watchdog, WatchdogGrace time.Duration
	// TestHangNasd freezes nasd once it serves (a test hook).
	TestHangNasd bool
	// TestInstall is the install test hook's request, checked
	// (ParseTestInstall reads it).
	TestInstall string
}

// DefaultInitOptions suit qemu's user-mode network.
func DefaultInitOptions() InitOptions {
	return InitOptions{
		Address:  netip.MustParsePrefix("10.0.2.15/24"),
		Gateway:  netip.MustParseAddr("10.0.2.2"),
		Watchdog: watchdog.DefaultTimeout, WatchdogGrace: watchdog.DefaultGrace,
	}
}

// ParseInitOptions reads the init's parameters from the kernel command
// line.
func ParseInitOptions(params []guest.Param) (InitOptions, error) {
	o := DefaultInitOptions()
	if v, ok := guest.Lookup(params, ParamIP); ok {
		p, err := netip.ParsePrefix(v)
		if err != nil || !p.Addr().Is4() {
			return InitOptions{}, fmt.Errorf("userland: %s=%q: want an IPv4 address with its prefix length (10.0.2.15/24)", ParamIP, v)
		}
		o.Address = p
	}
	if v, ok := guest.Lookup(params, ParamGateway); ok {
		if v == "none" {
			o.Gateway = netip.Addr{}
		} else {
			a, err := netip.ParseAddr(v)
			if err != nil || !a.Is4() {
				return InitOptions{}, fmt.Errorf("userland: %s=%q: want an IPv4 address or none", ParamGateway, v)
			}
			o.Gateway = a
		}
	}
	if o.Gateway.IsValid() && !o.Address.Masked().Contains(o.Gateway) {
		return InitOptions{}, fmt.Errorf("userland: gateway %s is outside %s", o.Gateway, o.Address.Masked())
	}
	if v, ok := guest.Lookup(params, ParamTestShare); ok {
		if !shareName.MatchString(v) {
			return InitOptions{}, fmt.Errorf("userland: %s=%q: want a share name (letters, digits, - and _)", ParamTestShare, v)
		}
		o.TestShare = v
	}
	if v, ok := guest.Lookup(params, ParamTestUpdate); ok {
		for _, d := range strings.Split(v, ",") {
			if !strings.HasPrefix(d, "/dev/") || strings.Contains(d, "..") {
				return InitOptions{}, fmt.Errorf("userland: %s=%q: want devices under /dev, separated by commas", ParamTestUpdate, v)
			}
		}
		o.TestUpdate = v
	}
	for _, p := range []struct {
		name     string
		dst      *time.Duration
		min, max int
	}{{ParamWatchdog, &o.Watchdog, 2, 3600}, {ParamWatchdogGrace, &o.WatchdogGrace, 1, 3600}} {
		v, ok := guest.Lookup(params, p.name)
		if !ok {
			continue
		}
		if p.name == ParamWatchdog && (v == "off" || v == "0") {
			*p.dst = 0
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < p.min || n > p.max {
			return InitOptions{}, fmt.Errorf("userland: %s=%q: want seconds, %d-%d", p.name, v, p.min, p.max)
		}
		*p.dst = time.Duration(n) * time.Second
	}
	if v, ok := guest.Lookup(params, ParamTestHangNasd); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return InitOptions{}, fmt.Errorf("userland: %s=%q: want 1 or 0", ParamTestHangNasd, v)
		}
		o.TestHangNasd = b
	}
	if v, ok := guest.Lookup(params, ParamTestInstall); ok {
		if _, err := ParseTestInstall(v); err != nil {
			return InitOptions{}, err
		}
		o.TestInstall = v
	}
	return o, nil
}

var shareName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ServingPrefix starts the console line the slot's init prints once nasd
// answers `nasctl status` with every service healthy; the status JSON
// (one line) follows.
const ServingPrefix = "ftnas: nasd serving "

// ServingRegexp matches that line; the first submatch is the JSON.
func ServingRegexp() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(ServingPrefix) + `(\{.*\})\r?$`)
}

// TestShareLine is printed once the test share is there.
func TestShareLine(name string) string { return "ftnas: test share " + name + " ready" }

// TestShareKeptLine is printed instead of TestShareLine when the test
// share and its file are already there at boot (an earlier boot made
// them and they survived): the file's content and the share as nasd's
// state lists it (one line of JSON).
func TestShareKeptLine(name, content, shareJSON string) string {
	return "ftnas: test share " + name + " kept: file=" + strconv.Quote(content) + " share=" + shareJSON
}

// TestShareKeptRegexp matches a TestShareKeptLine: name, the quoted
// content, the share's JSON.
func TestShareKeptRegexp() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^ftnas: test share (\S+) kept: file=("(?:[^"\\]|\\.)*") share=(\{.*\})\r?$`)
}

// NasctlShareListArgs list the shares as JSON.
func NasctlShareListArgs() []string {
	return []string{NasctlPath, "--state", StateDir, "--json", "share", "list"}
}

// FindShare returns the share called name in `nasctl --json share list`
// output, as one line of JSON.
func FindShare(listJSON []byte, name string) (string, bool, error) {
	var shares []json.RawMessage
	if err := json.Unmarshal(listJSON, &shares); err != nil {
		return "", false, fmt.Errorf("userland: parse nasctl share list: %w", err)
	}
	for _, raw := range shares {
		var sh struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &sh); err != nil {
			return "", false, fmt.Errorf("userland: parse nasctl share list: %w", err)
		}
		if sh.Name == name {
			var buf bytes.Buffer
			if err := json.Compact(&buf, raw); err != nil {
				return "", false, fmt.Errorf("userland: parse nasctl share list: %w", err)
			}
			return buf.String(), true, nil
		}
	}
	return "", false, nil
}

// Backoff is how long the init waits before restarting nasd: 1 s after a
// run that ended within a minute of its start, doubling up to 30 s for
// each further short run; a run that lasted a minute resets it.
type Backoff struct {
	next time.Duration
}

// Next returns the wait after a run that lasted ran.
func (b *Backoff) Next(ran time.Duration) time.Duration {
	const first, max, healthy = time.Second, 30 * time.Second, time.Minute
	if ran >= healthy || b.next == 0 {
		b.next = first
		return b.next
	}
	b.next = min(2*b.next, max)
	return b.next
}

// NasdArgs are nasd's arguments in the slot. A box adopts a blank disk
// plugged in while an array is degraded (--raid-auto-adopt): that is what
// swapping a failed disk for a new one means on a NAS, with no console
// step between.
func NasdArgs() []string {
	return []string{NasdPath, "--state", StateDir, "--volume", Volume, "--raid-auto-adopt"}
}

// NasctlStatusArgs run `nasctl status --json` against the slot's nasd.
func NasctlStatusArgs() []string {
	return []string{NasctlPath, "--state", StateDir, "status", "--json"}
}

// NasctlShareArgs add the NFS-only test share name.
func NasctlShareArgs(name string) []string {
	return []string{NasctlPath, "--state", StateDir, "share", "add", name, "--nfs"}
}

// manifestLines normalises dpkg-query output: sorted, no blank lines.
func manifestLines(out string) []byte {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return []byte(strings.Join(lines, "\n") + "\n")
}

// Served reads `nasctl status --json` output: the status as one line of
// JSON, and whether nasd reports services and every one is healthy.
func Served(statusJSON []byte) (line string, healthy bool, err error) {
	var st struct {
		Services []struct {
			Name    string `json:"name"`
			Healthy bool   `json:"healthy"`
		} `json:"services"`
	}
	if err := json.Unmarshal(statusJSON, &st); err != nil {
		return "", false, fmt.Errorf("userland: parse nasctl status: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, statusJSON); err != nil {
		return "", false, fmt.Errorf("userland: parse nasctl status: %w", err)
	}
	healthy = len(st.Services) > 0
	for _, s := range st.Services {
		healthy = healthy && s.Healthy
	}
	return buf.String(), healthy, nil
}

// UpdateKeysDir is where the slot keeps the public keys it trusts for
// update bundles (update.DefaultKeysDir): `nasctl update` refuses a
// bundle that none of them signed.
const UpdateKeysDir = "/etc/ftnas/update-keys"

// UpdateKey is a public key the slot trusts for update bundles: its key
// id (update.KeyID: 16 lower-case hex digits) and the PEM "PUBLIC KEY".
type UpdateKey struct {
	ID  string
	PEM []byte
}

var keyID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// UpdateKeyFiles are the files of keys in UpdateKeysDir, one ID.pub
// each; SlotImage adds them with Files' files, so a box trusts the keys
// it was built with.
func UpdateKeyFiles(keys []UpdateKey) ([]rootfs.File, error) {
	var out []rootfs.File
	seen := map[string]bool{}
	for _, k := range keys {
		if !keyID.MatchString(k.ID) {
			return nil, fmt.Errorf("userland: update key id %q: want 16 lower-case hex digits", k.ID)
		}
		if seen[k.ID] {
			continue
		}
		seen[k.ID] = true
		if !bytes.HasPrefix(k.PEM, []byte("-----BEGIN PUBLIC KEY-----")) {
			return nil, fmt.Errorf("userland: update key %s: not a PEM public key", k.ID)
		}
		out = append(out, rootfs.File{Path: UpdateKeysDir + "/" + k.ID + ".pub", Data: k.PEM})
	}
	return out, nil
}
