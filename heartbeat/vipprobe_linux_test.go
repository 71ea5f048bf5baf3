package heartbeat

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestProbeVIPInNetns: across a veth, the probe finds the interface that
// holds the VIP, and finds nothing once the VIP is gone.
func TestProbeVIPInNetns(t *testing.T) {
	ns := newTestNetns(t)
	vip := netip.MustParsePrefix("10.77.3.100/24")
	runCmd(t, "ip", "-n", ns, "addr", "add", vip.String(), "dev", "hbv1")
	probe := func() (net.HardwareAddr, net.HardwareAddr) {
		var got, holder net.HardwareAddr
		if err := inNetns(ns, func() error {
			ifc, err := net.InterfaceByName("hbv1")
			if err != nil {
				return err
			}
			holder = ifc.HardwareAddr
			got, err = ProbeVIP(context.Background(), "hbv0", vip.Addr(), 300*time.Millisecond)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got, holder
	}
	if got, holder := probe(); !bytes.Equal(got, holder) {
		t.Fatalf("ProbeVIP with the VIP on hbv1 = %v, want hbv1's %v", got, holder)
	}
	runCmd(t, "ip", "-n", ns, "addr", "del", vip.String(), "dev", "hbv1")
	if got, _ := probe(); got != nil {
		t.Fatalf("ProbeVIP with no VIP anywhere = %v, want nothing", got)
	}
	if err := inNetns(ns, func() error {
		_, err := ProbeVIP(context.Background(), "nope0", vip.Addr(), time.Millisecond)
		return err
	}); err == nil {
		t.Error("ProbeVIP on a missing interface succeeded")
	}
}
