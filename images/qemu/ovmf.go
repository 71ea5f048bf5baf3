package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// OVMF is a UEFI firmware for qemu: the code image and the template of
// its variable store.
type OVMF struct {
	Code string
	Vars string
}

// ovmfPairs are the file names Debian's ovmf package uses, preferred
// first.
func ovmfPairs() [][2]string {
	return [][2]string{
		{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"},
		{"OVMF_CODE.fd", "OVMF_VARS.fd"},
	}
}

// OVMFDirs are searched by FindOVMF.
func OVMFDirs() []string { return []string{"/usr/share/OVMF", "/usr/share/edk2/ovmf"} }

// FindOVMF finds the non-secure-boot OVMF firmware (apt-get install ovmf)
// in dirs (OVMFDirs() when nil).
func FindOVMF(dirs []string) (OVMF, error) {
	if dirs == nil {
		dirs = OVMFDirs()
	}
	for _, d := range dirs {
		for _, p := range ovmfPairs() {
			o := OVMF{Code: filepath.Join(d, p[0]), Vars: filepath.Join(d, p[1])}
			if isFile(o.Code) && isFile(o.Vars) {
				return o, nil
			}
		}
	}
	return OVMF{}, fmt.Errorf("qemu: no OVMF firmware (OVMF_CODE*.fd with OVMF_VARS*.fd) in %v (apt-get install ovmf): %w", dirs, os.ErrNotExist)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// NewVars copies the firmware's variable-store template to path: each VM
// needs its own writable copy.
func (o OVMF) NewVars(path string) error {
	src, err := os.Open(o.Vars)
	if err != nil {
		return fmt.Errorf("qemu: copy OVMF vars: %w", err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("qemu: copy OVMF vars: %w", err)
	}
	_, err = io.Copy(dst, src)
	err = errors.Join(err, dst.Close())
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("qemu: copy OVMF vars to %s: %w", path, err)
	}
	return nil
}

// TempVars copies the variable-store template to a new file of its own
// in dir and returns its path (the caller removes it).
func (o OVMF) TempVars(dir string) (string, error) {
	f, err := os.CreateTemp(dir, "ovmf-vars-*.fd")
	if err != nil {
		return "", fmt.Errorf("qemu: copy OVMF vars: %w", err)
	}
	f.Close()
	os.Remove(f.Name()) // NewVars creates it exclusively
	if err := o.NewVars(f.Name()); err != nil {
		return "", err
	}
	return f.Name(), nil
}
