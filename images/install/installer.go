package install

import (
	"io"
	"log/slog"
	"sync"
	"time"

	"ftnas/images/boot"
	"ftnas/images/guest"
	"ftnas/raid"
)

// Installer installs the firmware of a bundle onto blank disks of the
// running box (see the package documentation).
type Installer struct {
	Mdadm *raid.Mdadm
	// SysBlock is /sys/block and SysClassBlock /sys/class/block ("" for
	// those), DevDir /dev ("" for it).
	SysBlock, SysClassBlock, DevDir string
	// Cmdline returns the kernel command line; nil reads /proc/cmdline.
	Cmdline func() ([]guest.Param, error)
	// LoaderVars returns systemd-boot's variables (ok false without
	// UEFI); nil reads efivarfs.
	LoaderVars func() (boot.LoaderVars, bool, error)
	// KeysDir holds the trusted update keys; "" means
	// update.DefaultKeysDir.
	KeysDir string
	// Rand makes the installation id; nil means crypto/rand.
	Rand io.Reader
	// PartitionWait bounds the wait for the new partitions; 0 means 10 s.
	PartitionWait time.Duration
	Logger        *slog.Logger

	mu sync.Mutex
}

// Options say what to install where.
type Options struct {
	// Disks are kernel names or /dev paths of the blank disks.
	Disks     []string
	DataLevel raid.Level
	// AllowUnsigned is update.Options.AllowUnsigned: honoured only on a
	// box that trusts no key.
	AllowUnsigned bool
}

// ArrayResult is one array made.
type ArrayResult struct {
	Role    string
	Name    string // superblock name without the homehost
	UUID    string
	Level   raid.Level
	Members []string
	Size    int64
}

// Result is what Install did.
type Result struct {
	ID         string
	Version    string
	SignedBy   string
	Unverified bool
	Disks      []string
	Arrays     []ArrayResult
	// Bytes and SHA256 are the slot image as read back from root A and
	// from root B (a copy of A).
	Bytes  int64
	SHA256 string
	// BootFiles says where the kernel and initrd came from: "bundle" or
	// "running ESP".
	BootFiles string
	// ESPHash is the SHA-256 every new disk's ESP has.
	ESPHash string
	// Cmdline is slot A's kernel command line.
	Cmdline string
}

func (in *Installer) log() *slog.Logger {
	if in.Logger != nil {
		return in.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (in *Installer) devDir() string        { return or(in.DevDir, "/dev") }
func (in *Installer) sysBlock() string      { return or(in.SysBlock, "/sys/block") }
func (in *Installer) sysClassBlock() string { return or(in.SysClassBlock, "/sys/class/block") }

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
