package qemu

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestParseQMPReply(t *testing.T) {
	greeting := `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}` + "\n"
	event := `{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "DEVICE_DELETED", "data": {"device": "disk1"}}` + "\n"
	ret, err := ParseQMPReply(bufio.NewReader(strings.NewReader(greeting + event + `{"return": {}}` + "\n")))
	if err != nil || string(ret) != "{}" {
		t.Errorf("reply = %s, %v", ret, err)
	}
	_, err = ParseQMPReply(bufio.NewReader(strings.NewReader(`{"error": {"class": "DeviceNotFound", "desc": "Device 'x' not found"}}` + "\n")))
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Class != "DeviceNotFound" {
		t.Errorf("error reply: %v", err)
	}
	for _, bad := range []string{"", greeting, "not json\n", `{"foo": 1}` + "\n", event} {
		if _, err := ParseQMPReply(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("ParseQMPReply(%q) succeeded", bad)
		}
	}
	// A reply without a trailing newline (connection closed) still counts.
	if ret, err := ParseQMPReply(bufio.NewReader(strings.NewReader(`{"return": [1]}`))); err != nil || string(ret) != "[1]" {
		t.Errorf("unterminated reply = %s, %v", ret, err)
	}
}

func FuzzParseQMPReply(f *testing.F) {
	f.Add(`{"QMP": {}}` + "\n" + `{"event": "X"}` + "\n" + `{"return": {}}` + "\n")
	f.Add(`{"error": {"class": "GenericError", "desc": "no"}}`)
	f.Fuzz(func(t *testing.T, s string) {
		ret, err := ParseQMPReply(bufio.NewReader(strings.NewReader(s)))
		if err == nil && ret == nil {
			t.Fatalf("no reply and no error for %q", s)
		}
	})
}
