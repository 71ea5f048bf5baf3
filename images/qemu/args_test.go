package qemu

import (
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	args, err := Args(Options{
		Kernel: "/k", Initrd: "/i", Append: "ftnas.run=/bin/t",
		Disks:  []string{"/d/a.raw", "/d/b.qcow2"},
		NICs:   []NIC{{Netdev: "user"}, {Netdev: "socket,listen=127.0.0.1:5555", MAC: "52:54:00:00:00:02"}},
		Memory: 256, CPUs: 2, QMP: true, Extra: []string{"-cpu", "max"},
	}, "/run/q.sock")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(args, " ")
	for _, want := range []string{
		"-machine pc,accel=tcg -m 256 -smp 2 -nodefaults",
		"-serial stdio -monitor none -no-reboot -kernel /k -initrd /i",
		"-append console=ttyS0 panic=-1 quiet no_timer_check ftnas.run=/bin/t",
		"-drive file=/d/a.raw,format=raw,if=none,id=drive-disk0,cache=unsafe -device virtio-blk-pci,drive=drive-disk0,id=disk0,serial=disk0",
		"-drive file=/d/b.qcow2,format=qcow2,if=none,id=drive-disk1",
		"-netdev user,id=net0 -device virtio-net-pci,netdev=net0,id=net0 ",
		"-netdev socket,listen=127.0.0.1:5555,id=net1 -device virtio-net-pci,netdev=net1,id=net1,mac=52:54:00:00:00:02",
		"-qmp unix:/run/q.sock,server=on,wait=off -cpu max",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("args lack %q:\n%s", want, got)
		}
	}
	def, err := Args(Options{Kernel: "/k"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := strings.Join(def, " "); !strings.Contains(d, "-m 512 -smp 1") || strings.Contains(d, "-initrd") || strings.Contains(d, "-qmp") {
		t.Errorf("defaults: %s", d)
	}
}

func TestArgsFirmware(t *testing.T) {
	args, err := Args(Options{Firmware: "/ovmf/code.fd", FirmwareVars: "/tmp/vars.fd", Disks: []string{"/d/a.raw"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(args, " ")
	want := "-no-reboot -drive if=pflash,format=raw,unit=0,readonly=on,file=/ovmf/code.fd -drive if=pflash,format=raw,unit=1,file=/tmp/vars.fd -drive file=/d/a.raw"
	if !strings.Contains(got, want) {
		t.Errorf("firmware args lack %q:\n%s", want, got)
	}
	if strings.Contains(got, "-kernel") || strings.Contains(got, "-append") {
		t.Errorf("a firmware boot without Kernel has -kernel or -append: %s", got)
	}
}

func TestArgsErrors(t *testing.T) {
	for _, tt := range []struct {
		o    Options
		want string
	}{
		{Options{}, "no Kernel"},
		{Options{Firmware: "/code.fd"}, "FirmwareVars"},
		{Options{Firmware: "/code.fd", FirmwareVars: "/v,ars"}, "FirmwareVars"},
		{Options{Firmware: "/c", FirmwareVars: "/v", Initrd: "/i"}, "without Kernel"},
		{Options{Kernel: "/k", Memory: 16}, "too small"},
		{Options{Kernel: "/k", CPUs: -1}, "CPUs"},
		{Options{Kernel: "/k", Disks: []string{"/a,b"}}, "disk 0"},
		{Options{Kernel: "/k", Disks: []string{""}}, "disk 0"},
		{Options{Kernel: "/k", NICs: []NIC{{Netdev: "user,id=x"}}}, "NIC 0"},
		{Options{Kernel: "/k", NICs: []NIC{{}}}, "NIC 0"},
		{Options{Kernel: "/k", QMP: true}, "QMP socket"},
	} {
		if _, err := Args(tt.o, ""); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Args(%+v) error = %v, want %q", tt.o, err, tt.want)
		}
	}
}
