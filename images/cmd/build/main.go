// Command build writes an ftnas firmware installation: N raw disk images
// in a directory, each with the same GPT, a byte-identical ESP
// (systemd-boot, slots A and B) and md RAID1 members of root A/B and
// state, plus the data array; see package disk. With -boot it then boots
// each disk alone under OVMF and checks that root A comes up degraded
// from it. Run it as root (the package cache), from inside the ftnas
// module (it builds the Go programs):
//
//	go run ./images/cmd/build -dir /tmp/ftnas-img -disks 4 -boot
//
// With -userland the slots hold the real userland (package userland:
// Debian minbase with Samba and mdadm, nasd, nasctl, the slot init)
// instead of the placeholder init; the Debian tree is bootstrapped once
// into the cache (about 2 minutes) and reused. -boot then boots all the
// disks together with a user-net NIC and waits until nasd serves.
//
// With -userland, -bundle VERSION also writes DIR/ftnas-VERSION.bundle,
// an update bundle of the slot image (package update) that `nasctl
// update` installs on a running box.
//
// The bundle is signed (Ed25519, package update) with each key given by
// -signing-key FILE (repeatable) or, without the flag, by
// FTNAS_SIGNING_KEY (files separated by commas). A key file is a PEM
// "PRIVATE KEY" (PKCS #8), as `openssl genpkey -algorithm ed25519 -out
// FILE` writes. Without either, a development key is generated once into
// the cache (CACHE/update-keys/development-signing-key.pem) and used,
// with a loud warning: a box built with it accepts updates from whoever
// has that cache. The slot image trusts the public keys of the signing
// keys and of every -trust-key FILE (a PEM "PUBLIC KEY", `openssl pkey
// -in KEY -pubout`), as /etc/ftnas/update-keys/KEYID.pub.
//
// Releases are ordered by a serial, a build number: -serial N, by
// default the number of commits of HEAD (`git rev-list --count HEAD`,
// which grows along the main branch). The slot image says which release
// it is in /etc/ftnas/release ({"version": -release or -bundle's VERSION
// or "dev", "serial": N}), and the bundle's signed manifest carries the
// same serial; a box refuses a bundle with a lower serial than the one
// it runs (package update, CheckDowngrade). -serial 0 leaves the serial
// out of the bundle: a stepping stone for boxes whose firmware predates
// serials (their manifest parser refuses the unknown field).
//
// Key rotation: build release N trusting the old and the new key
// (-signing-key old.pem -trust-key new.pub) and sign it with the old key;
// once boxes run N, sign N+1 with the new key (or with both, for boxes
// still before N) and drop the old one from -trust-key.
package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ftnas/images/deb"
	"ftnas/images/disk"
	"ftnas/images/kernel"
	"ftnas/images/qemu"
	"ftnas/images/rootfs"
	"ftnas/images/update"
	"ftnas/images/userland"
	"ftnas/raid"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "", "output directory (created; disk*.raw must not exist)")
	n := flag.Int("disks", 2, "number of disks")
	diskMiB := flag.Int64("disk-size", 0, "disk size in MiB (0: the smallest the layout fits)")
	espMiB := flag.Int64("esp-size", 512, "ESP size in MiB")
	rootMiB := flag.Int64("root-size", 2048, "root slot size in MiB")
	stateMiB := flag.Int64("state-size", 1024, "state size in MiB")
	dataMiB := flag.Int64("min-data", 1024, "smallest data partition in MiB")
	small := flag.Bool("small", false, "test sizes: ESP 64, root 32, state 8, data 8 MiB")
	cmdline := flag.String("cmdline", "", "extra kernel command line for both slots")
	cache := flag.String("cache", deb.DefaultCacheDir(), "package cache directory")
	flavour := flag.String("kernel", "generic", "kernel flavour: generic (real boxes: SATA, NICs, hardware watchdogs) or cloud (virtio only; boots faster in qemu)")
	offline := flag.Bool("offline", false, "use only packages already in the cache")
	bootEach := flag.Bool("boot", false, "boot each disk alone under OVMF and check root A comes up")
	verbose := flag.Bool("v", false, "show the guests' consoles")
	withUserland := flag.Bool("userland", false, "slots hold the Debian userland with nasd (package userland), not the placeholder init")
	level := flag.Int("zstd-level", userland.CompressionLevel, "zstd level of the -userland slot squashfs (1-22)")
	bundleVersion := flag.String("bundle", "", "with -userland, also write DIR/ftnas-VERSION.bundle, an update bundle of the slot image")
	releaseName := flag.String("release", "", "with -userland, the release's name in the slot's /etc/ftnas/release (default: -bundle's VERSION, else dev)")
	serialFlag := flag.String("serial", "git", "with -userland, the release's serial (build number ordering releases; a box refuses a bundle below the serial it runs): a number, or git for the commit count of HEAD")
	var signingKeys, trustKeys []string
	flag.Func("signing-key", "with -userland, sign bundles with this Ed25519 PEM private key and trust it in the slot (repeatable; default $FTNAS_SIGNING_KEY, else the cache's development key)", func(v string) error {
		signingKeys = append(signingKeys, v)
		return nil
	})
	flag.Func("trust-key", "with -userland, the slot also trusts this Ed25519 PEM public key for updates (repeatable; key rotation)", func(v string) error {
		trustKeys = append(trustKeys, v)
		return nil
	})
	flag.Parse()
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	if *bundleVersion != "" && !*withUserland {
		return fmt.Errorf("-bundle needs -userland (the placeholder slot is no update)")
	}
	lo := raid.LayoutOptions{ESPSize: *espMiB * raid.MiB, RootSize: *rootMiB * raid.MiB, StateSize: *stateMiB * raid.MiB, MinData: *dataMiB * raid.MiB}
	if *small {
		lo = raid.LayoutOptions{ESPSize: 64 * raid.MiB, RootSize: 32 * raid.MiB, StateSize: 8 * raid.MiB, MinData: 8 * raid.MiB}
		if *withUserland {
			lo.RootSize = 192 * raid.MiB // the zstd userland is about 110 MiB
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	logf := func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) }
	quiet := func(string, ...any) {}
	console := quiet
	if *verbose {
		console = logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(*dir, "build", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	start := time.Now()
	meta, mods, err := kernelChoice(*flavour)
	if err != nil {
		return err
	}
	in, err := disk.FetchInputsKernel(ctx, meta, deb.Options{CacheDir: *cache, Offline: *offline, Logger: log}, bin)
	if err != nil {
		return err
	}
	logf("inputs: kernel %s, %s, built in %v", in.Kernel.Release, in.Bootloader, time.Since(start).Round(time.Millisecond))
	if *withUserland {
		keys, trusted, err := updateKeys(signingKeys, trustKeys, *cache, log)
		if err != nil {
			return err
		}
		kf, err := userland.UpdateKeyFiles(trusted)
		if err != nil {
			return err
		}
		serial, err := resolveSerial(ctx, *serialFlag)
		if err != nil {
			return err
		}
		rel, err := releaseFile(update.Release{Version: firstOf(*releaseName, *bundleVersion, "dev"), Serial: serial})
		if err != nil {
			return err
		}
		logf("release: %s", rel.Data)
		kf = append(kf, rel)
		tree, im, err := userland.BuildImage(ctx, userland.Options{CacheDir: *cache, Logf: logf}, bin, filepath.Join(*dir, "build", "userland.squashfs"), *level, kf...)
		if err != nil {
			return err
		}
		logf("userland: tree %s (cached=%v, %v), slot image %d MiB sha256 %s (cached=%v, %v)", tree.Key, tree.Cached, tree.Took.Round(time.Millisecond),
			im.Size>>20, im.SHA256, im.Cached, im.Took.Round(time.Millisecond))
		in.SlotImage = im.Path
		if *bundleVersion != "" {
			p := filepath.Join(*dir, "ftnas-"+*bundleVersion+".bundle")
			os.Remove(p)
			m, err := update.Create(p, update.Sources{Version: *bundleVersion, Serial: serial, Rootfs: im.Path, Keys: keys})
			if err != nil {
				return err
			}
			var ids []string
			for _, k := range keys {
				ids = append(ids, update.KeyIDOf(k.Public().(ed25519.PublicKey)).String())
			}
			fmt.Printf("bundle %s version %s serial %d rootfs %d bytes sha256 %s signed by %s\n", p, m.Version, m.Serial, m.Parts[0].Size, m.Parts[0].SHA256, strings.Join(ids, ", "))
		}
	}
	res, err := disk.Build(ctx, in, disk.Options{
		Dir: *dir, Disks: *n, DiskSize: *diskMiB * raid.MiB, Layout: lo, Cmdline: *cmdline, Modules: mods,
		Logf: func(format string, args ...any) {
			if len(format) > 5 && format[:5] == "disk:" {
				logf(format, args...)
			} else {
				console(format, args...)
			}
		},
	})
	if err != nil {
		return err
	}
	for _, d := range res.Disks {
		fmt.Println("disk", d)
	}
	fmt.Println("esp sha256", res.ESPHash)
	for _, a := range res.Arrays {
		fmt.Printf("array %s %s members=%d size=%dMiB uuid=%s\n", a.Name, a.Level, a.Members, a.Size>>20, a.UUID)
	}
	if !*bootEach {
		return nil
	}
	fw, err := qemu.FindOVMF(nil)
	if err != nil {
		return err
	}
	if *withUserland {
		vm, r, err := userland.Boot(ctx, fw, res.Disks, []qemu.NIC{{Netdev: "user"}}, filepath.Join(*dir, "build"), 0, console)
		if vm != nil {
			defer vm.Kill()
		}
		if err != nil {
			return err
		}
		fmt.Printf("boot all disks: marker at %v, nasd serving at %v: root %s degraded=%d members=%d/%d\n%s\nnasctl status: %s\n",
			r.ToMarker.Round(100*time.Millisecond), r.ToServing.Round(100*time.Millisecond),
			r.Marker.Slot, r.Marker.Degraded, r.Marker.InSync, r.Marker.RaidDisks, r.Userland, r.Status)
		return nil
	}
	for _, d := range res.Disks {
		r, err := disk.BootDisks(ctx, fw, []string{d}, filepath.Join(*dir, "build"), 0, console)
		if err != nil {
			return err
		}
		fmt.Printf("boot %s alone: marker at %v, off at %v: root %s degraded=%d members=%d/%d; %s\n",
			filepath.Base(d), r.ToMarker.Round(100*time.Millisecond), r.Took.Round(100*time.Millisecond),
			r.Marker.Slot, r.Marker.Degraded, r.Marker.InSync, r.Marker.RaidDisks, r.Userland)
	}
	return nil
}

// updateKeys resolves the bundle signing keys (the files named, else
// FTNAS_SIGNING_KEY's, else the cache's development key) and the public
// keys the slot trusts: the signing keys' and the trust files'.
func updateKeys(signing, trust []string, cache string, log *slog.Logger) ([]ed25519.PrivateKey, []userland.UpdateKey, error) {
	if len(signing) == 0 {
		if env := os.Getenv("FTNAS_SIGNING_KEY"); env != "" {
			signing = strings.Split(env, ",")
		}
	}
	var keys []ed25519.PrivateKey
	var trusted []userland.UpdateKey
	addPub := func(pub ed25519.PublicKey) {
		trusted = append(trusted, userland.UpdateKey{ID: update.KeyIDOf(pub).String(), PEM: update.MarshalPublicKey(pub)})
	}
	for _, p := range signing {
		k, err := update.LoadSigningKey(p)
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
		addPub(k.Public().(ed25519.PublicKey))
		log.Info("update bundles signed", "key", update.KeyIDOf(k.Public().(ed25519.PublicKey)).String(), "file", p)
	}
	if len(keys) == 0 {
		k, path, created, err := update.DevSigningKey(cache)
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
		addPub(k.Public().(ed25519.PublicKey))
		log.Warn("!!! DEVELOPMENT SIGNING KEY: no -signing-key or FTNAS_SIGNING_KEY; update bundles are signed with, and the slot trusts, the build cache's development key: NOT FOR RELEASES !!!",
			"key", update.KeyIDOf(k.Public().(ed25519.PublicKey)).String(), "file", path, "generated_now", created)
	}
	for _, p := range trust {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("trust key: %w", err)
		}
		pub, err := update.ParsePublicKey(b)
		if err != nil {
			return nil, nil, fmt.Errorf("trust key %s: %w", p, err)
		}
		addPub(pub)
		log.Info("slot trusts update key", "key", update.KeyIDOf(pub).String(), "file", p)
	}
	return keys, trusted, nil
}

// resolveSerial turns the -serial flag into a serial: a number, or "git"
// for the commit count of HEAD.
func resolveSerial(ctx context.Context, flagValue string) (uint64, error) {
	if flagValue != "git" {
		return parseSerial(flagValue)
	}
	out, err := exec.CommandContext(ctx, "git", "rev-list", "--count", "HEAD").Output()
	if err != nil {
		return 0, fmt.Errorf("-serial git: git rev-list --count HEAD: %w (give -serial N)", err)
	}
	return parseSerial(strings.TrimSpace(string(out)))
}

// parseSerial parses a serial: a decimal number up to update.MaxSerial.
func parseSerial(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > update.MaxSerial {
		return 0, fmt.Errorf("-serial %q: want a number 0-%d or git", s, uint64(update.MaxSerial))
	}
	return n, nil
}

// releaseFile is the slot's /etc/ftnas/release for r.
func releaseFile(r update.Release) (rootfs.File, error) {
	b, err := update.MarshalRelease(r)
	if err != nil {
		return rootfs.File{}, err
	}
	return rootfs.File{Path: update.DefaultReleaseFile, Data: b}, nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// kernelChoice maps -kernel to the meta-package and the firmware
// initramfs's modules.
func kernelChoice(flavour string) (meta string, mods []string, err error) {
	switch flavour {
	case "generic":
		// The hardware watchdog loads before softdog (in
		// FirmwareModules), so /dev/watchdog is the hardware one.
		return disk.GenericKernel, append(disk.HardwareModules(), disk.FirmwareModules()...), nil
	case "cloud":
		return kernel.MetaPackage, disk.FirmwareModules(), nil
	}
	return "", nil, fmt.Errorf("build: -kernel %q: want generic or cloud", flavour)
}
