package qemu

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// Available reports whether qemu can run here, and why not.
func Available(o Options) error {
	if _, err := exec.LookPath(o.binary()); err != nil {
		return fmt.Errorf("qemu: %s not found (apt-get install qemu-system-x86): %w", o.binary(), err)
	}
	return nil
}

// Boot starts a VM for a test: the console goes to the test log, qemu is
// killed in Cleanup. It skips the test when qemu is not installed and
// fails it when qemu does not start.
func Boot(t testing.TB, o Options) *TestVM {
	t.Helper()
	if err := Available(o); err != nil {
		t.Skip(err)
	}
	vm, err := Start(o, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	return &TestVM{VM: vm, t: t}
}

// TestVM is a VM whose Must methods fail the test.
type TestVM struct {
	*VM
	t testing.TB
}

// MustExpect is Expect that fails the test.
func (v *TestVM) MustExpect(re *regexp.Regexp) []string {
	v.t.Helper()
	m, err := v.Expect(re)
	if err != nil {
		v.t.Fatal(err)
	}
	return m
}

// MustPass waits for the guest's result line and for qemu to exit, and
// fails the test unless the guest passed and qemu exited cleanly.
func (v *TestVM) MustPass() {
	v.t.Helper()
	if err := v.Result(); err != nil {
		v.t.Fatal(err)
	}
	if err := v.Wait(); err != nil {
		v.t.Fatal(err)
	}
	v.t.Logf("qemu: guest passed and powered off after %v", v.Elapsed().Round(10e6))
}

// CreateRaw creates a sparse raw disk image of size bytes.
func CreateRaw(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("qemu: create disk %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("qemu: create disk %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("qemu: create disk %s: %w", path, err)
	}
	return nil
}
