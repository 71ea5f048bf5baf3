package disk

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"ftnas/images/deb"
	"ftnas/images/initramfs"
	"ftnas/images/kernel"
)

// BootloaderPackage is the Debian package with systemd-boot's EFI binary,
// and BootloaderFile its path inside the package.
const (
	BootloaderPackage = "systemd-boot-efi"
	BootloaderFile    = "usr/lib/systemd/boot/efi/systemd-bootx64.efi"
)

// Packages are the Debian packages an installation needs besides the
// kernel.
func Packages() []string { return []string{BootloaderPackage, "mdadm"} }

// Bootloader returns systemd-bootx64.efi in an unpacked systemd-boot-efi.
func Bootloader(p deb.Package) (string, error) {
	f := filepath.Join(p.Root, BootloaderFile)
	if _, err := os.Stat(f); err != nil {
		return "", fmt.Errorf("disk: bootloader in %s %s: %w", p.Name, p.Version, err)
	}
	return f, nil
}

// MdadmBinary returns sbin/mdadm in an unpacked mdadm package.
func MdadmBinary(p deb.Package) (string, error) {
	f := filepath.Join(p.Root, "sbin", "mdadm")
	if _, err := os.Stat(f); err != nil {
		return "", fmt.Errorf("disk: mdadm in %s %s: %w", p.Name, p.Version, err)
	}
	return f, nil
}

// FetchInputs fetches the kernel, systemd-boot and mdadm into the package
// cache (opts) and builds the Go programs into binDir. It runs the go tool
// in the current directory, which must be inside the ftnas module.
func FetchInputs(ctx context.Context, opts deb.Options, binDir string) (Inputs, error) {
	return FetchInputsKernel(ctx, "", opts, binDir)
}

// FetchInputsKernel is FetchInputs with the kernel meta-package to use
// ("" for kernel.MetaPackage, the cloud flavour; GenericKernel for real
// boxes).
func FetchInputsKernel(ctx context.Context, kernelMeta string, opts deb.Options, binDir string) (Inputs, error) {
	var in Inputs
	k, err := kernel.Fetch(ctx, kernelMeta, opts)
	if err != nil {
		return Inputs{}, err
	}
	in.Kernel = k
	sb, err := deb.Fetch(ctx, BootloaderPackage, opts)
	if err != nil {
		return Inputs{}, err
	}
	if in.Bootloader, err = Bootloader(sb); err != nil {
		return Inputs{}, err
	}
	md, err := deb.Fetch(ctx, "mdadm", opts)
	if err != nil {
		return Inputs{}, err
	}
	if in.Mdadm, err = MdadmBinary(md); err != nil {
		return Inputs{}, err
	}
	for _, b := range []struct {
		pkg string
		dst *string
	}{
		{initramfs.InitPackage, &in.TestInit},
		{BootInitPackage, &in.BootInit},
		{RootInitPackage, &in.RootInit},
		{InstallerPackage, &in.Installer},
	} {
		out := filepath.Join(binDir, path.Base(path.Dir(b.pkg))+"-"+path.Base(b.pkg))
		if err := initramfs.GoBuild(ctx, b.pkg, out, ""); err != nil {
			return Inputs{}, err
		}
		*b.dst = out
	}
	return in, nil
}
