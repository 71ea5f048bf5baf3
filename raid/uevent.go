package raid

import (
	"bytes"
	"fmt"
	"strings"
)

// Uevent is one kernel uevent as NETLINK_KOBJECT_UEVENT delivers it:
// "ACTION@DEVPATH\0KEY=VALUE\0...".
type Uevent struct {
	Action  string // add, remove, change, move, online, offline, bind, unbind
	DevPath string // /devices/pci0000:00/.../block/vdb
	Env     map[string]string
}

// Subsystem is SUBSYSTEM (block, net, ...).
func (u Uevent) Subsystem() string { return u.Env["SUBSYSTEM"] }

// DevName is DEVNAME (vdb, sda3), the name under /dev.
func (u Uevent) DevName() string { return u.Env["DEVNAME"] }

// BlockHotplug reports whether u is a block device appearing or
// vanishing: what makes the hot-plug Manager look again.
func (u Uevent) BlockHotplug() bool {
	return u.Subsystem() == "block" && (u.Action == "add" || u.Action == "remove")
}

// maxUevent bounds a message; the kernel's own limit is 2048 bytes of
// environment plus the header.
const maxUevent = 8192

// ParseUevent parses one kernel uevent message. Messages from udev's
// monitor ("libudev" header) are not kernel uevents and are refused.
func ParseUevent(b []byte) (Uevent, error) {
	if len(b) == 0 {
		return Uevent{}, fmt.Errorf("raid: parse uevent: empty message")
	}
	if len(b) > maxUevent {
		return Uevent{}, fmt.Errorf("raid: parse uevent: %d bytes, more than %d", len(b), maxUevent)
	}
	fields := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	head := string(fields[0])
	if strings.HasPrefix(head, "libudev") {
		return Uevent{}, fmt.Errorf("raid: parse uevent: a udev monitor message, not a kernel uevent")
	}
	action, devpath, ok := strings.Cut(head, "@")
	if !ok || action == "" || !strings.HasPrefix(devpath, "/") {
		return Uevent{}, fmt.Errorf("raid: parse uevent: header %.80q: want ACTION@/DEVPATH", head)
	}
	u := Uevent{Action: action, DevPath: devpath, Env: map[string]string{}}
	for _, f := range fields[1:] {
		if len(f) == 0 {
			continue
		}
		k, v, ok := strings.Cut(string(f), "=")
		if !ok || k == "" {
			return Uevent{}, fmt.Errorf("raid: parse uevent %s@%s: field %.80q: want KEY=VALUE", action, devpath, f)
		}
		u.Env[k] = v
	}
	if a, ok := u.Env["ACTION"]; ok && a != action {
		return Uevent{}, fmt.Errorf("raid: parse uevent %s@%s: ACTION=%q disagrees with the header", action, devpath, a)
	}
	if p, ok := u.Env["DEVPATH"]; ok && p != devpath {
		return Uevent{}, fmt.Errorf("raid: parse uevent %s@%s: DEVPATH=%q disagrees with the header", action, devpath, p)
	}
	return u, nil
}
