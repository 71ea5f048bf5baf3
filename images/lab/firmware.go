package lab

import (
	"context"
	"testing"

	"ftnas/images/deb"
	"ftnas/images/disk"
	"ftnas/images/rootfs"
	"ftnas/images/userland"
)

// Userland bootstraps the firmware's userland tree (Debian's packages,
// from the build cache) and returns it with the files that put this
// module's nasd, nasctl and init into it: what every test that builds a
// slot image starts from.
func Userland(ctx context.Context, t testing.TB) (userland.Tree, []rootfs.File) {
	t.Helper()
	tree, err := userland.Bootstrap(ctx, userland.Options{CacheDir: deb.DefaultCacheDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	files, err := userland.Files(userland.Binaries{
		Nasd:   GoBinary(t, userland.NasdPackage),
		Nasctl: GoBinary(t, userland.NasctlPackage),
		Init:   GoBinary(t, userland.InitPackage),
	}, tree.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	return tree, files
}

// Bootloader is the EFI boot loader the installed disks get
// (disk.Bootloader of the build cache's package).
func Bootloader(t testing.TB) string {
	t.Helper()
	bl, err := disk.Bootloader(Package(t, disk.BootloaderPackage))
	if err != nil {
		t.Fatal(err)
	}
	return bl
}
