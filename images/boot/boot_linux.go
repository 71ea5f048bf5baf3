package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"ftnas/raid"
)

// pollInterval is how often AssembleRoot looks for new members.
const pollInterval = 100 * time.Millisecond

// ScanPartitions returns the /dev paths of the partitions whose GPT name
// is partname, read from the uevent files under sysClassBlock
// (/sys/class/block).
func ScanPartitions(sysClassBlock, partname string) ([]string, error) {
	ents, err := os.ReadDir(sysClassBlock)
	if err != nil {
		return nil, fmt.Errorf("boot: scan partitions: %w", err)
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(sysClassBlock, e.Name(), "uevent"))
		if err != nil {
			continue // gone meanwhile
		}
		u := ParseUevent(string(b))
		if u["DEVTYPE"] == "partition" && u["PARTNAME"] == partname && u["DEVNAME"] != "" {
			out = append(out, "/dev/"+u["DEVNAME"])
		}
	}
	sort.Strings(out)
	return out, nil
}

// AssembleRoot waits for the members of slot's root array and assembles
// it (degraded when Waiter says so). It returns the array's status and
// its device (/dev/md127). logf gets progress lines.
func AssembleRoot(ctx context.Context, md *raid.Mdadm, opts Options, logf func(string, ...any)) (raid.ArrayStatus, string, error) {
	return AssembleArray(ctx, md, ArrayName(opts.Slot), opts, logf)
}

// AssembleArray waits for the members of the array whose GPT partition
// name and superblock name is name (ftnas-state) and assembles it as
// /dev/md/NAME, as AssembleRoot does the root: opts.RootWait bounds the
// wait for a first member, and it starts degraded opts.DegradedAfter
// after the first member was seen. An array already running as
// /dev/md/NAME is returned as it is.
func AssembleArray(ctx context.Context, md *raid.Mdadm, name string, opts Options, logf func(string, ...any)) (raid.ArrayStatus, string, error) {
	if dev, err := filepath.EvalSymlinks("/dev/md/" + name); err == nil {
		st, err := raid.ReadArray(os.DirFS("/sys/block"), filepath.Base(dev))
		if err == nil && st.State.Running() {
			if err := CheckInstall(ctx, md, "/dev", st, name, opts.Install); err != nil {
				return st, "", err
			}
			return st, dev, nil
		}
	}
	w := NewWaiter(opts, time.Now())
	examined := map[string]raid.Superblock{}
	seen := 0
	for {
		devs, err := ScanPartitions("/sys/class/block", name)
		if err != nil {
			return raid.ArrayStatus{}, "", err
		}
		var cands []Candidate
		for _, d := range devs {
			sb, ok := examined[d]
			if !ok {
				sb, err = md.Examine(ctx, d)
				if err != nil {
					logf("boot: %s: %v", d, err) // looked at again next time
				} else {
					examined[d] = sb
				}
			}
			cands = append(cands, Candidate{Device: d, SB: sb})
		}
		g, found := ChooseIn(cands, name, opts.Install)
		if found && len(g.Devices) != seen {
			seen = len(g.Devices)
			logf("boot: %s: %d of %d members present: %v", name, len(g.Devices), g.Expected, g.Devices)
		}
		d := w.Decide(time.Now(), g, found)
		switch d.Action {
		case GiveUp:
			of := ""
			if opts.Install != "" {
				of = " of installation " + opts.Install
			}
			return raid.ArrayStatus{}, "", fmt.Errorf("boot: no member of %s%s found in %v (partitions named %s: %v)", name, of, opts.RootWait, name, devs)
		case Assemble:
			dev := "/dev/md/" + name
			if d.Degraded {
				logf("boot: %s: starting degraded after waiting %v for %d missing members", name, opts.DegradedAfter, g.Expected-len(g.Devices))
			}
			// --run even when all members are here: one of them may be
			// stale (it missed writes while another disk booted alone)
			// and mdadm would otherwise not start the array without it.
			if err := md.Assemble(ctx, dev, g.Devices, true); err != nil {
				return raid.ArrayStatus{}, "", fmt.Errorf("boot: assemble %s from %v: %w", name, g.Devices, err)
			}
			mdName, err := holder(g.Devices[0])
			if err != nil {
				return raid.ArrayStatus{}, "", err
			}
			st, err := raid.ReadArray(os.DirFS("/sys/block"), mdName)
			if err != nil {
				return raid.ArrayStatus{}, "", err
			}
			if !st.State.Running() {
				return st, "", fmt.Errorf("boot: %s assembled as %s but not running (array_state %s)", name, mdName, st.State)
			}
			return st, "/dev/" + mdName, nil
		}
		select {
		case <-ctx.Done():
			return raid.ArrayStatus{}, "", fmt.Errorf("boot: wait for %s: %w", name, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// CheckInstall refuses a running array st (/dev/md/NAME) that is not
// install's: its first member's superblock (read from devDir, /dev) names
// another homehost. An empty install accepts any array.
func CheckInstall(ctx context.Context, md *raid.Mdadm, devDir string, st raid.ArrayStatus, name, install string) error {
	if install == "" {
		return nil
	}
	for _, m := range st.Members {
		sb, err := md.Examine(ctx, filepath.Join(devDir, m.Name))
		if err != nil || !sb.Populated {
			continue
		}
		if h := SuperblockHomehost(sb.Name); h != install {
			return fmt.Errorf("boot: /dev/md/%s runs as %s, but it is installation %q's array, not %q's (%s=)", name, st.Name, h, install, ParamInstall)
		}
		return nil
	}
	return nil
}

// holder returns the md array that holds the partition dev (/dev/vda2):
// the entry in /sys/class/block/vda2/holders.
func holder(dev string) (string, error) {
	dir := filepath.Join("/sys/class/block", filepath.Base(dev), "holders")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("boot: holder of %s: %w", dev, err)
	}
	for _, e := range ents {
		if n := e.Name(); len(n) > 2 && n[:2] == "md" {
			return n, nil
		}
	}
	return "", fmt.Errorf("boot: holder of %s: no md array in %s", dev, dir)
}

// MountRoot mounts the squashfs on dev read-only at dir.
func MountRoot(dev, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("boot: mount root: %w", err)
	}
	if err := unix.Mount(dev, dir, "squashfs", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("boot: mount %s (squashfs) on %s: %w", dev, dir, err)
	}
	return nil
}

// SwitchRoot makes newRoot the root and executes init there, as
// switch_root does: it moves /dev, /proc, /sys, /run and /tmp under
// newRoot, deletes the initramfs's files to free their memory, moves
// newRoot onto / and chroots. It returns only on failure.
func SwitchRoot(newRoot, init string, argv []string) error {
	if _, err := os.Stat(filepath.Join(newRoot, init)); err != nil {
		return fmt.Errorf("boot: switch root: %w", err)
	}
	var rootSt unix.Stat_t
	if err := unix.Stat("/", &rootSt); err != nil {
		return fmt.Errorf("boot: switch root: stat /: %w", err)
	}
	for _, m := range []string{"/dev", "/proc", "/sys", "/run", "/tmp"} {
		dst := filepath.Join(newRoot, m)
		if err := unix.Mount(m, dst, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("boot: switch root: move %s to %s: %w", m, dst, err)
		}
	}
	if err := freeInitramfs(newRoot, rootSt.Dev); err != nil {
		return err
	}
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("boot: switch root: %w", err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("boot: switch root: move %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("boot: switch root: chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("boot: switch root: %w", err)
	}
	if err := unix.Exec(init, argv, os.Environ()); err != nil {
		return fmt.Errorf("boot: switch root: exec %s: %w", init, err)
	}
	return nil
}

// freeInitramfs removes the initramfs's top-level entries other than
// newRoot, skipping anything on another filesystem than rootDev. Only a
// ramfs or tmpfs root is cleaned.
func freeInitramfs(newRoot string, rootDev uint64) error {
	var sfs unix.Statfs_t
	if err := unix.Statfs("/", &sfs); err != nil {
		return fmt.Errorf("boot: free initramfs: %w", err)
	}
	if sfs.Type != unix.RAMFS_MAGIC && sfs.Type != unix.TMPFS_MAGIC {
		return nil
	}
	ents, err := os.ReadDir("/")
	if err != nil {
		return fmt.Errorf("boot: free initramfs: %w", err)
	}
	var errs []error
	for _, e := range ents {
		p := "/" + e.Name()
		if p == filepath.Clean(newRoot) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil || st.Dev != rootDev {
			continue
		}
		errs = append(errs, os.RemoveAll(p))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("boot: free initramfs: %w", err)
	}
	return nil
}

// ReadLoaderVars reads systemd-boot's variables, mounting efivarfs when
// it is not mounted yet. ok is false when the kernel was not booted by
// UEFI (no /sys/firmware/efi).
func ReadLoaderVars() (v LoaderVars, ok bool, err error) {
	if _, err := os.Stat("/sys/firmware/efi"); err != nil {
		return LoaderVars{}, false, nil
	}
	if _, err := os.Stat(filepath.Join(EFIVarsDir, EFIVarFile(VarLoaderInfo))); err != nil {
		err := unix.Mount("efivarfs", EFIVarsDir, "efivarfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RDONLY, "")
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return LoaderVars{}, true, fmt.Errorf("boot: mount efivarfs on %s: %w", EFIVarsDir, err)
		}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{VarLoaderInfo, &v.Info}, {VarLoaderEntrySelected, &v.Entry}, {VarLoaderDevicePartUUID, &v.ESP}} {
		b, err := os.ReadFile(filepath.Join(EFIVarsDir, EFIVarFile(f.name)))
		if err != nil {
			return v, true, fmt.Errorf("boot: read EFI variable %s: %w", f.name, err)
		}
		if *f.dst, err = DecodeEFIString(b); err != nil {
			return v, true, fmt.Errorf("boot: EFI variable %s: %w", f.name, err)
		}
	}
	return v, true, nil
}
