package heartbeat

import (
	"errors"
	"testing"
)

func TestReceiver(t *testing.T) {
	r, err := NewReceiver(testKey, testCluster, 2)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(node uint32, path uint8, epoch, seq uint64) Msg {
		return Msg{ClusterID: testCluster, NodeID: node, Path: path, State: StateMaster, Epoch: epoch, Seq: seq}
	}
	steps := []struct {
		name string
		path int
		b    []byte
		want error
	}{
		{"first", 0, Encode(testKey, msg(2, 0, 3, 10)), nil},
		{"same on the other path", 1, Encode(testKey, msg(2, 1, 3, 10)), nil},
		{"replay", 0, Encode(testKey, msg(2, 0, 3, 10)), ErrReplay},
		{"older sequence", 0, Encode(testKey, msg(2, 0, 3, 9)), ErrReplay},
		{"newer sequence", 0, Encode(testKey, msg(2, 0, 3, 11)), nil},
		{"older epoch, higher sequence", 0, Encode(testKey, msg(2, 0, 2, 99)), ErrReplay},
		{"newer epoch, lower sequence", 0, Encode(testKey, msg(2, 0, 5, 1)), nil},
		{"copied onto the other path", 1, Encode(testKey, msg(2, 0, 5, 2)), ErrWrongPath},
		{"unknown node", 0, Encode(testKey, msg(3, 0, 9, 99)), ErrUnknownNode},
		{"wrong cluster", 0, Encode(testKey, Msg{ClusterID: 99, NodeID: 2, Epoch: 9, Seq: 99}), ErrWrongCluster},
		{"bad mac", 0, Encode([]byte("not-the-cluster-key"), msg(2, 0, 9, 99)), ErrMAC},
		{"garbage", 0, []byte("hello"), ErrMagic},
		{"truncated", 0, Encode(testKey, msg(2, 0, 9, 99))[:40], ErrLength},
	}
	for _, s := range steps {
		_, err := r.Accept(s.path, s.b)
		if !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
			t.Fatalf("%s: Accept: %v, want %v", s.name, err, s.want)
		}
	}
	want := ReceiverStats{Accepted: 4, Malformed: 2, BadMAC: 1, WrongCluster: 1, UnknownNode: 1, WrongPath: 1, Replayed: 3}
	if got := r.Stats(); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
	if got := want.Dropped(); got != 9 {
		t.Fatalf("Dropped() = %d, want 9", got)
	}
}

func TestNewReceiverErrors(t *testing.T) {
	if _, err := NewReceiver([]byte("short"), 1, 2); err == nil {
		t.Fatal("short key accepted")
	}
	if _, err := NewReceiver(testKey, 1, 0); err == nil {
		t.Fatal("peer id 0 accepted")
	}
	key := []byte("0123456789abcdef")
	r, err := NewReceiver(key, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	key[0] = 'X' // the receiver keeps its own copy
	if _, err := r.Accept(0, Encode([]byte("0123456789abcdef"), Msg{ClusterID: 1, NodeID: 2, Seq: 1})); err != nil {
		t.Fatalf("Accept after caller changed its key slice: %v", err)
	}
}
