package heartbeat

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/ethernet"
)

func TestGratuitousARPFrame(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	ip := netip.MustParseAddr("10.77.0.10")
	b, err := gratuitousARPFrame(mac, ip)
	if err != nil {
		t.Fatal(err)
	}
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Destination, ethernet.Broadcast) || !bytes.Equal(f.Source, mac) || f.EtherType != ethernet.EtherTypeARP {
		t.Fatalf("frame header %v -> %v type %v", f.Source, f.Destination, f.EtherType)
	}
	want := "0001" + "0800" + "06" + "04" + "0001" + "02000000000a" + "0a4d000a" + "000000000000" + "0a4d000a"
	if got := hex.EncodeToString(f.Payload[:arpSize]); got != want {
		t.Fatalf("arp payload\n got  %s\n want %s", got, want)
	}
	a, err := parseARP(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if a.Op != arpRequest || a.SenderIP != ip || a.TargetIP != ip || !bytes.Equal(a.SenderMAC, mac) {
		t.Fatalf("parsed %+v", a)
	}
	if _, err := gratuitousARPFrame(mac, netip.MustParseAddr("fd00::1")); err == nil {
		t.Fatal("IPv6 address accepted")
	}
	if _, err := gratuitousARPFrame(net.HardwareAddr{1, 2}, ip); err == nil {
		t.Fatal("short MAC accepted")
	}
}

func TestParseARPErrors(t *testing.T) {
	good, _ := arpPacket{Op: arpReply, SenderMAC: make(net.HardwareAddr, 6), SenderIP: netip.MustParseAddr("1.2.3.4"),
		TargetMAC: make(net.HardwareAddr, 6), TargetIP: netip.MustParseAddr("5.6.7.8")}.marshal()
	for name, b := range map[string][]byte{
		"short":      good[:27],
		"not ether":  append([]byte{0, 6}, good[2:]...),
		"not ipv4":   append(append([]byte{}, good[:2]...), append([]byte{0x86, 0xdd}, good[4:]...)...),
		"hlen wrong": append(append([]byte{}, good[:4]...), append([]byte{8}, good[5:]...)...),
	} {
		if _, err := parseARP(b); !errors.Is(err, errARP) {
			t.Errorf("%s: %v, want errARP", name, err)
		}
	}
}

func FuzzParseARP(f *testing.F) {
	frame, _ := gratuitousARPFrame(net.HardwareAddr{2, 0, 0, 0, 0, 1}, netip.MustParseAddr("192.0.2.1"))
	f.Add(frame[14:])
	f.Add(frame[14 : 14+arpSize])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseARP(b)
		if err != nil {
			return
		}
		again, err := a.marshal()
		if err != nil {
			t.Fatalf("parsed %+v does not marshal: %v", a, err)
		}
		if !bytes.Equal(again, b[:arpSize]) {
			t.Fatalf("round trip %x, want %x", again, b[:arpSize])
		}
	})
}
