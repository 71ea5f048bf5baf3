package raid_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"ftnas/images/qemu"
	"ftnas/raid"
)

// TestQEMUHotplug runs internal/hotplugguest: a RAID1 over two virtio
// disks with a bitmap and raid.Manager listening to uevents. The host
// unplugs vdb (QMP device_del) while the guest writes; the Manager must
// fail and remove it. The host plugs the same image back (device_add);
// the Manager must re-add it, the array must be clean and the re-added
// disk alone must hold all data, including what was written meanwhile.
func TestQEMUHotplug(t *testing.T) {
	vm, disks := mdGuest(t, "hotplugtest", "ftnas/raid/internal/hotplugguest", []string{"a", "b"}, true, 120*time.Second)

	// Round 1 while the guest writes, round 2 idle.
	for range 2 {
		replug(t, vm, disks[1])
	}
	m := vm.MustExpect(regexp.MustCompile(`(?m)^hotplug: summary (\{.*\})\r?$`))
	vm.MustPass()
	var s struct {
		Actions       []string         `json:"actions"`
		RemovedS      float64          `json:"removed_s"`
		Degraded      raid.ArrayStatus `json:"degraded"`
		ReAddedS      float64          `json:"readded_s"`
		ReAddedDevice string           `json:"readded_device"`
		ChunksBefore  int              `json:"chunks_before"`
		ChunksAbsent  int              `json:"chunks_absent"`
		DataOK        bool             `json:"data_ok"`
		Final         raid.ArrayStatus `json:"final"`
	}
	if err := json.Unmarshal([]byte(m[1]), &s); err != nil {
		t.Fatalf("summary %s: %v", m[1], err)
	}
	t.Logf("unplug handled in %.2fs, re-add clean in %.2fs; actions %q; %d chunks written before, %d during the absence",
		s.RemovedS, s.ReAddedS, s.Actions, s.ChunksBefore, s.ChunksAbsent)
	if d := s.Degraded; d.Degraded != 1 || len(d.Members) != 1 || d.Members[0].Name != "vda" {
		t.Errorf("after unplug: %+v; want degraded 1 with only vda", d)
	}
	var removed, readded int
	for _, a := range s.Actions {
		if !strings.HasSuffix(a, "ok=true") {
			continue
		}
		if strings.HasPrefix(a, "remove md0 ") {
			removed++
		}
		if strings.HasPrefix(a, "re-add md0 ") {
			readded++
		}
	}
	if removed != 2 || readded != 2 {
		t.Errorf("manager actions %q: want two successful removes and two re-adds", s.Actions)
	}
	if s.ChunksAbsent < 16 || !s.DataOK {
		t.Errorf("data: %d chunks written during the absence, intact on the re-added disk: %v", s.ChunksAbsent, s.DataOK)
	}
	if f, ok := s.Final.Member(s.ReAddedDevice); !ok || !f.InSync() {
		t.Errorf("final %s: %+v; want in_sync", s.ReAddedDevice, s.Final)
	}
}

// replug waits for the guest's ready-remove, unplugs disk1, waits for
// ready-add and qemu to have let go of the device, and plugs the same
// image back as disk1.
func replug(t *testing.T, vm *qemu.TestVM, image string) {
	t.Helper()
	vm.MustExpect(regexp.MustCompile(`(?m)^hotplug: ready-remove\r?$`))
	if _, err := vm.QMP("device_del", map[string]any{"id": "disk1"}); err != nil {
		t.Fatal(err)
	}
	vm.MustExpect(regexp.MustCompile(`(?m)^hotplug: ready-add\r?$`))
	// device_del completes when the guest has ejected the device.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ret, err := vm.QMP("qom-list", map[string]any{"path": "/machine/peripheral"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(ret), `"disk1"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("disk1 still present 20 s after device_del: %s", ret)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A -drive backend goes away with its device; a blockdev-add node
	// stays. Attach the same image under the old drive id if needed.
	ret, err := vm.QMP("query-named-block-nodes", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ret), `"node-name": "drive-disk1"`) && !strings.Contains(string(ret), `"node-name":"drive-disk1"`) {
		if _, err := vm.QMP("blockdev-add", map[string]any{
			"driver": "raw", "node-name": "drive-disk1",
			"file": map[string]any{"driver": "file", "filename": image},
		}); err != nil {
			t.Fatal(err)
		}
	}
	// The old device's block backend may still hold the node for a moment
	// after qom-list dropped the device ("Permission conflict"): retry.
	for {
		_, err := vm.QMP("device_add", map[string]any{"driver": "virtio-blk-pci", "drive": "drive-disk1", "id": "disk1", "serial": "disk1"})
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "Permission conflict") || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
