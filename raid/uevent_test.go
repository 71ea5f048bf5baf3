package raid

import (
	"strings"
	"testing"
)

func msg(parts ...string) []byte { return []byte(strings.Join(parts, "\x00") + "\x00") }

func TestParseUevent(t *testing.T) {
	add := msg("add@/devices/pci0000:00/0000:00:05.0/virtio2/block/vdb",
		"ACTION=add", "DEVPATH=/devices/pci0000:00/0000:00:05.0/virtio2/block/vdb", "SUBSYSTEM=block",
		"MAJOR=254", "MINOR=16", "DEVNAME=vdb", "DEVTYPE=disk", "DISKSEQ=7", "SEQNUM=1234")
	u, err := ParseUevent(add)
	if err != nil {
		t.Fatal(err)
	}
	if u.Action != "add" || u.DevPath != "/devices/pci0000:00/0000:00:05.0/virtio2/block/vdb" || u.DevName() != "vdb" || u.Subsystem() != "block" || !u.BlockHotplug() || u.Env["SEQNUM"] != "1234" {
		t.Errorf("parsed %+v", u)
	}
	for _, tt := range []struct {
		in      []byte
		hotplug bool
	}{
		{msg("remove@/devices/virtual/block/loop0", "ACTION=remove", "SUBSYSTEM=block", "DEVNAME=loop0"), true},
		{msg("change@/devices/virtual/block/md0", "ACTION=change", "SUBSYSTEM=block", "DEVNAME=md0"), false},
		{msg("add@/devices/virtual/net/veth0", "ACTION=add", "SUBSYSTEM=net", "INTERFACE=veth0"), false},
		{[]byte("add@/module/raid1"), false}, // no trailing NUL, no environment
	} {
		u, err := ParseUevent(tt.in)
		if err != nil || u.BlockHotplug() != tt.hotplug {
			t.Errorf("ParseUevent(%q) = %+v, %v; want hotplug %v", tt.in, u, err, tt.hotplug)
		}
	}
	for _, tt := range []struct {
		in  []byte
		err string
	}{
		{nil, "empty"},
		{msg("libudev", "junk"), "udev monitor"},
		{msg("add"), "want ACTION@/DEVPATH"},
		{msg("@/devices/x"), "want ACTION@/DEVPATH"},
		{msg("add@devices/x"), "want ACTION@/DEVPATH"},
		{msg("add@/devices/x", "NOEQUALS"), "want KEY=VALUE"},
		{msg("add@/devices/x", "=v"), "want KEY=VALUE"},
		{msg("add@/devices/x", "ACTION=remove"), "disagrees"},
		{msg("add@/devices/x", "DEVPATH=/devices/y"), "disagrees"},
		{make([]byte, maxUevent+1), "more than"},
	} {
		if _, err := ParseUevent(tt.in); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseUevent(%.40q) error = %v, want %q", tt.in, err, tt.err)
		}
	}
}

func FuzzParseUevent(f *testing.F) {
	f.Add(msg("add@/devices/virtio2/block/vdb", "ACTION=add", "SUBSYSTEM=block", "DEVNAME=vdb"))
	f.Add(msg("remove@/devices/virtual/block/loop0", "SUBSYSTEM=block"))
	f.Add(msg("libudev", "x"))
	f.Add([]byte("add@/x\x00\x00=\x00A=B=C"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseUevent(b)
		if err != nil {
			return
		}
		if u.Action == "" || !strings.HasPrefix(u.DevPath, "/") || strings.Contains(u.Action, "@") {
			t.Fatalf("accepted %q as %+v", b, u)
		}
		for k := range u.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				t.Fatalf("key %q from %q", k, b)
			}
		}
		if a, ok := u.Env["ACTION"]; ok && a != u.Action {
			t.Fatalf("ACTION %q vs header %q", a, u.Action)
		}
	})
}
