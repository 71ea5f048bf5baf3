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
	if err := vm.UnplugDisk("disk1", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	vm.MustExpect(regexp.MustCompile(`(?m)^hotplug: ready-add\r?$`))
	if err := vm.PlugDisk("disk1", "drive-disk1", image, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}
