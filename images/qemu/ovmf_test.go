package qemu

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFindOVMF(t *testing.T) {
	dir := t.TempDir()
	if _, err := FindOVMF([]string{dir}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("FindOVMF in an empty dir: %v, want ErrNotExist", err)
	}
	for _, n := range []string{"OVMF_CODE.fd", "OVMF_VARS.fd", "OVMF_CODE_4M.fd"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// OVMF_CODE_4M.fd has no VARS_4M beside it: the pair without 4M wins.
	o, err := FindOVMF([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(o.Code) != "OVMF_CODE.fd" || filepath.Base(o.Vars) != "OVMF_VARS.fd" {
		t.Errorf("FindOVMF = %+v", o)
	}
	vars := filepath.Join(dir, "vm-vars.fd")
	if err := o.NewVars(vars); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(vars); err != nil || string(b) != "OVMF_VARS.fd" {
		t.Errorf("vars copy = %q, %v", b, err)
	}
	if err := o.NewVars(vars); err == nil {
		t.Error("NewVars overwrote an existing file")
	}
	a, err1 := o.TempVars(dir)
	b, err2 := o.TempVars(dir)
	if err1 != nil || err2 != nil || a == b || filepath.Dir(a) != dir {
		t.Fatalf("TempVars = %q, %q, %v, %v; want two files in %s", a, b, err1, err2, dir)
	}
	if c, err := os.ReadFile(a); err != nil || string(c) != "OVMF_VARS.fd" {
		t.Errorf("TempVars copy = %q, %v", c, err)
	}
}
