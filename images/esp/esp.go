package esp

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Paths on the ESP.
const (
	// BootloaderPath is where systemd-boot installs itself.
	BootloaderPath = "/EFI/systemd/systemd-bootx64.efi"
	// FallbackPath is the removable-media path UEFI firmware boots when
	// it has no boot entry for a disk.
	FallbackPath   = "/EFI/BOOT/BOOTX64.EFI"
	LoaderConfPath = "/loader/loader.conf"
	// Label is the FAT volume label.
	Label = "FTNAS-ESP"
)

// Epoch is the date of every file and directory on the ESP.
func Epoch() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }

// EntryPath is the loader entry of slot as Files writes it: rank 1 for
// the default slot, 0 for the others, no boot counter.
func (c Config) EntryPath(slot string) string {
	rank := 0
	if slot == c.defaultSlot() {
		rank = 1
	}
	return GoodEntry(slot, rank).Path()
}

// KernelPath and InitrdPath are where slot's kernel and initrd live.
func KernelPath(slot string) string { return "/ftnas/" + slot + "/vmlinuz" }

// InitrdPath is slot's initrd.
func InitrdPath(slot string) string { return "/ftnas/" + slot + "/initrd.img" }

// Slot is one root slot's boot entry.
type Slot struct {
	// Name is the slot's name: lower-case letters and digits ("a", "b").
	Name string
	// Title is the menu title; "" means "ftnas slot A".
	Title string
	// Kernel and Initrd are host files copied to the ESP.
	Kernel string
	Initrd string
	// Options is the kernel command line.
	Options string
}

// Config is what goes on the ESP.
type Config struct {
	// Bootloader is the host path of systemd-bootx64.efi (Debian package
	// systemd-boot-efi).
	Bootloader string
	Slots      []Slot
	// Default is the slot booted without a choice; "" means the first.
	Default string
	// Timeout is how many seconds the menu waits; 0 boots the default at
	// once (a key held at power-on still shows the menu).
	Timeout int
}

// File is one file on the ESP: a host file (Source) or Data.
type File struct {
	Path   string
	Source string
	Data   []byte
}

func validSlot(name string) bool {
	if name == "" || len(name) > 8 {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func (c Config) check() error {
	if c.Bootloader == "" {
		return fmt.Errorf("esp: config: no Bootloader")
	}
	if len(c.Slots) == 0 {
		return fmt.Errorf("esp: config: no Slots")
	}
	if c.Timeout < 0 {
		return fmt.Errorf("esp: config: Timeout %d", c.Timeout)
	}
	seen := map[string]bool{}
	for _, s := range c.Slots {
		if !validSlot(s.Name) {
			return fmt.Errorf("esp: config: bad slot name %q (want 1-8 of a-z, 0-9)", s.Name)
		}
		if seen[s.Name] {
			return fmt.Errorf("esp: config: slot %s listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.Kernel == "" || s.Initrd == "" {
			return fmt.Errorf("esp: config: slot %s needs Kernel and Initrd", s.Name)
		}
		if strings.ContainsAny(s.Options, "\n\r") || strings.ContainsAny(s.Title, "\n\r") {
			return fmt.Errorf("esp: config: slot %s: Title and Options must be one line", s.Name)
		}
	}
	if c.Default != "" && !seen[c.Default] {
		return fmt.Errorf("esp: config: default slot %q is not among the slots", c.Default)
	}
	return nil
}

func (c Config) defaultSlot() string {
	if c.Default != "" {
		return c.Default
	}
	return c.Slots[0].Name
}

// LoaderConf is loader.conf: the default entry (DefaultPattern: the
// entries' names say which slot boots), the menu timeout, no
// command-line editor (the appliance is not a workstation).
func LoaderConf(c Config) string {
	return fmt.Sprintf("default %s\ntimeout %d\nconsole-mode keep\neditor no\n", DefaultPattern, c.Timeout)
}

// Entry is slot's Boot Loader Specification (type #1) entry.
func Entry(s Slot) string {
	title := s.Title
	if title == "" {
		title = "ftnas slot " + strings.ToUpper(s.Name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "title %s\n", title)
	fmt.Fprintf(&b, "linux %s\n", KernelPath(s.Name))
	fmt.Fprintf(&b, "initrd %s\n", InitrdPath(s.Name))
	if o := strings.TrimSpace(s.Options); o != "" {
		fmt.Fprintf(&b, "options %s\n", o)
	}
	return b.String()
}

// Files lists the ESP's files, sorted by path.
func Files(c Config) ([]File, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	out := []File{
		{Path: BootloaderPath, Source: c.Bootloader},
		{Path: FallbackPath, Source: c.Bootloader},
		{Path: LoaderConfPath, Data: []byte(LoaderConf(c))},
	}
	for _, s := range c.Slots {
		out = append(out,
			File{Path: c.EntryPath(s.Name), Data: []byte(Entry(s))},
			File{Path: KernelPath(s.Name), Source: s.Kernel},
			File{Path: InitrdPath(s.Name), Source: s.Initrd})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
