package qemu

import (
	"fmt"
	"strings"
	"time"
)

// UnplugDisk asks the guest to eject the virtio disk with qdev id (QMP
// device_del; Options.Disks are disk0, disk1, ...) and waits until qemu
// has let go of the device, at most timeout. device_del only completes
// when the guest has ejected it.
func (vm *VM) UnplugDisk(id string, timeout time.Duration) error {
	if _, err := vm.QMP("device_del", map[string]any{"id": id}); err != nil {
		return fmt.Errorf("qemu: unplug %s: %w", id, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		ret, err := vm.QMP("qom-list", map[string]any{"path": "/machine/peripheral"})
		if err != nil {
			return fmt.Errorf("qemu: unplug %s: %w", id, err)
		}
		if !strings.Contains(string(ret), `"`+id+`"`) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("qemu: unplug %s: still present %v after device_del: %s", id, timeout, ret)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// PlugDisk attaches the raw image as a virtio-blk disk with qdev id and
// serial id (QMP device_add), behind the block node node. A -drive
// backend (Options.Disks' "drive-ID") goes away with its device, a node
// added by blockdev-add stays: PlugDisk adds node over image unless a
// node of that name exists (then image is not looked at). Right after
// UnplugDisk the old device's backend may still hold the node for a
// moment ("Permission conflict"): PlugDisk retries until timeout.
func (vm *VM) PlugDisk(id, node, image string, timeout time.Duration) error {
	ret, err := vm.QMP("query-named-block-nodes", nil)
	if err != nil {
		return fmt.Errorf("qemu: plug %s: %w", id, err)
	}
	if !strings.Contains(string(ret), `"node-name": "`+node+`"`) && !strings.Contains(string(ret), `"node-name":"`+node+`"`) {
		if _, err := vm.QMP("blockdev-add", map[string]any{
			"driver": "raw", "node-name": node,
			"file": map[string]any{"driver": "file", "filename": image},
		}); err != nil {
			return fmt.Errorf("qemu: plug %s: add node %s over %s: %w", id, node, image, err)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		_, err := vm.QMP("device_add", map[string]any{"driver": "virtio-blk-pci", "drive": node, "id": id, "serial": id})
		if err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "Permission conflict") || time.Now().After(deadline) {
			return fmt.Errorf("qemu: plug %s (node %s): %w", id, node, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
