package appliance

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// TestGate: a closed gate holds NFS calls until it opens (or the call's
// context ends); closing it waits for the calls in flight.
func TestGate(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	g := newGate(false)
	entered := make(chan bool, 1)
	go func() { entered <- g.enter(context.Background(), time.Hour, log) }()
	select {
	case <-entered:
		t.Fatal("a call passed the closed gate")
	default:
	}
	g.open()
	if !<-entered {
		t.Fatal("the call was refused when the gate opened")
	}

	// Closed, the gate waits for that call to leave.
	g.close()
	idle := make(chan bool, 1)
	go func() { idle <- g.idle(time.Hour) }()
	select {
	case <-idle:
		t.Fatal("idle returned with a call in flight")
	default:
	}
	g.leave()
	if !<-idle {
		t.Fatal("idle reported calls still in flight after the last left")
	}

	// Closed again: a call gives up with its context.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { entered <- g.enter(ctx, time.Hour, log) }()
	cancel()
	if <-entered {
		t.Fatal("a call whose context ended passed the closed gate")
	}

	// A call stuck in flight: close gives up after its wait.
	g.open()
	if !g.enter(context.Background(), time.Hour, log) {
		t.Fatal("open gate refused a call")
	}
	g.close()
	if g.idle(time.Millisecond) {
		t.Fatal("idle reported no call in flight")
	}
	g.leave()
	if !g.idle(time.Hour) {
		t.Fatal("idle gate reported a call in flight")
	}
}
