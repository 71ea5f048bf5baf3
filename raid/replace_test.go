package raid

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestReplaceArgs(t *testing.T) {
	got, err := ReplaceArgs("/dev/md0", "/dev/sdb2", "/dev/sdc2")
	want := []string{"--manage", "/dev/md0", "--replace", "/dev/sdb2", "--with", "/dev/sdc2"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ReplaceArgs = %q, %v; want %q", got, err, want)
	}
	for _, c := range [][3]string{{"", "a", "b"}, {"/dev/md0", "", "b"}, {"/dev/md0", "a", ""}, {"/dev/md0", "a", "a"}} {
		if args, err := ReplaceArgs(c[0], c[1], c[2]); err == nil {
			t.Errorf("ReplaceArgs(%q) = %q, want an error", c, args)
		}
	}
}

func TestMdadmReplace(t *testing.T) {
	f := &fakeRunner{fail: map[string]string{"/dev/vdz": "mdadm: /dev/vdz is not a spare\n"}}
	m := &Mdadm{Path: "/sbin/mdadm", Run: f.run}
	ctx := context.Background()
	if err := m.Replace(ctx, "/dev/md0", "/dev/vda", "/dev/vdc"); err != nil {
		t.Fatal(err)
	}
	want := []string{"/sbin/mdadm", "--manage", "/dev/md0", "--replace", "/dev/vda", "--with", "/dev/vdc"}
	if len(f.calls) != 1 || !reflect.DeepEqual(f.calls[0], want) {
		t.Errorf("calls = %q, want %q", f.calls, want)
	}
	err := m.Replace(ctx, "/dev/md0", "/dev/vda", "/dev/vdz")
	var e *Error
	if err == nil || !strings.Contains(err.Error(), "/dev/vdz is not a spare") || !errors.As(err, &e) || e.ExitCode != 1 {
		t.Errorf("failed replace = %v", err)
	}
	if err := m.Replace(ctx, "/dev/md0", "/dev/vda", "/dev/vda"); err == nil || len(f.calls) != 2 {
		t.Errorf("replace with itself = %v after %d calls; want an error without running mdadm", err, len(f.calls))
	}
}
