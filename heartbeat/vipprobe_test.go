package heartbeat

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/ethernet"
)

func arpFrame(t testing.TB, src net.HardwareAddr, a arpPacket) []byte {
	t.Helper()
	p, err := a.marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&ethernet.Frame{Destination: ethernet.Broadcast, Source: src, EtherType: ethernet.EtherTypeARP, Payload: p}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVIPHolder(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.100")
	own := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	other := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	zero := make(net.HardwareAddr, 6)
	probe, err := vipProbeFrame(own, vip)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		want  net.HardwareAddr
	}{
		{"reply from the holder", arpFrame(t, other, arpPacket{Op: arpReply, SenderMAC: other, SenderIP: vip, TargetMAC: own, TargetIP: netip.IPv4Unspecified()}), other},
		{"gratuitous announcement", arpFrame(t, other, arpPacket{Op: arpRequest, SenderMAC: other, SenderIP: vip, TargetMAC: zero, TargetIP: vip}), other},
		{"our own reply (looped back)", arpFrame(t, own, arpPacket{Op: arpReply, SenderMAC: own, SenderIP: vip, TargetMAC: other, TargetIP: vip}), nil},
		{"our own probe", probe, nil},
		{"another address", arpFrame(t, other, arpPacket{Op: arpReply, SenderMAC: other, SenderIP: netip.MustParseAddr("192.0.2.7"), TargetMAC: own, TargetIP: vip}), nil},
		{"a request from the VIP for someone else", arpFrame(t, other, arpPacket{Op: arpRequest, SenderMAC: other, SenderIP: vip, TargetMAC: zero, TargetIP: netip.MustParseAddr("192.0.2.1")}), nil},
		{"truncated", probe[:20], nil},
		{"not ARP", append(append([]byte{}, probe[:12]...), 0x08, 0x00, 0x45), nil},
	} {
		got, ok := vipHolder(tc.frame, vip, own)
		if ok != (tc.want != nil) || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: vipHolder = %v, %v; want %v", tc.name, got, ok, tc.want)
		}
	}
	// The probe itself: a broadcast ARP request for the VIP from an
	// unspecified sender address (RFC 5227), so no cache learns from it.
	var f ethernet.Frame
	if err := f.UnmarshalBinary(probe); err != nil {
		t.Fatal(err)
	}
	a, err := parseARP(f.Payload)
	if err != nil || a.Op != arpRequest || a.TargetIP != vip || !a.SenderIP.IsUnspecified() || !bytes.Equal(a.SenderMAC, own) || !bytes.Equal(f.Destination, ethernet.Broadcast) {
		t.Errorf("probe frame %+v, %+v, %v", f, a, err)
	}
}

func FuzzVIPHolder(f *testing.F) {
	vip := netip.MustParseAddr("192.0.2.100")
	own := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	other := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	f.Add(arpFrame(f, other, arpPacket{Op: arpReply, SenderMAC: other, SenderIP: vip, TargetMAC: own, TargetIP: netip.IPv4Unspecified()}))
	probe, _ := vipProbeFrame(own, vip)
	f.Add(probe)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		mac, ok := vipHolder(frame, vip, own)
		if !ok {
			return
		}
		if len(mac) != 6 || bytes.Equal(mac, own) {
			t.Fatalf("holder %v from %x", mac, frame)
		}
		var fr ethernet.Frame
		if err := fr.UnmarshalBinary(frame); err != nil || fr.EtherType != ethernet.EtherTypeARP {
			t.Fatalf("accepted a frame that is not ARP: %x", frame)
		}
	})
}
