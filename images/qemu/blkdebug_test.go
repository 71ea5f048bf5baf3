package qemu

import (
	"strings"
	"testing"
)

func TestArgsBlkdebug(t *testing.T) {
	args, err := Args(Options{Kernel: "/k", Disks: []string{"/d/a.raw", "/d/b.raw"}, Blkdebug: map[int]string{1: "/d/b.cfg"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(args, " ")
	for _, want := range []string{
		"-drive file=/d/a.raw,format=raw,if=none,id=drive-disk0,cache=unsafe -device virtio-blk-pci,drive=drive-disk0,id=disk0,serial=disk0 ",
		"-drive file=blkdebug:/d/b.cfg:/d/b.raw,format=raw,if=none,id=drive-disk1,cache=unsafe,werror=report,rerror=report " +
			"-device virtio-blk-pci,drive=drive-disk1,id=disk1,serial=disk1,write-zeroes=off",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("args lack %q:\n%s", want, got)
		}
	}
	for _, bad := range []map[int]string{{2: "/d/c.cfg"}, {-1: "/d/c.cfg"}, {0: ""}, {0: "/d/x:y.cfg"}, {0: "/d/x,y.cfg"}} {
		if _, err := Args(Options{Kernel: "/k", Disks: []string{"/d/a.raw", "/d/b.raw"}, Blkdebug: bad}, ""); err == nil {
			t.Errorf("Blkdebug %v accepted", bad)
		}
	}
	if _, err := Args(Options{Kernel: "/k", Disks: []string{"/d/a:b.raw"}, Blkdebug: map[int]string{0: "/d/c.cfg"}}, ""); err == nil {
		t.Error("a blkdebug image with a colon accepted")
	}
}

func TestBlkdebugConfig(t *testing.T) {
	got := BlkdebugConfig(5)
	for _, want := range []string{
		"[set-state]\nstate = \"1\"\nevent = \"pwritev_zero\"\nnew_state = \"2\"\n",
		"[inject-error]\nstate = \"2\"\nevent = \"read_aio\"\nerrno = \"5\"\nonce = \"off\"\n",
		"[inject-error]\nstate = \"2\"\nevent = \"write_aio\"\nerrno = \"5\"\nonce = \"off\"\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "state = \"1\"") != 1 {
		t.Errorf("only the trigger may act in state 1:\n%s", got)
	}
}
