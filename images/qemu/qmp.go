package qemu

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// QMPError is an error reply from qemu.
type QMPError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *QMPError) Error() string { return "qmp: " + e.Class + ": " + e.Desc }

// qmpMessage is any message qemu sends on QMP.
type qmpMessage struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *QMPError       `json:"error"`
	Event  string          `json:"event"`
}

// ParseQMPReply reads messages from r until the reply to a command: its
// "return" value or its error. Events and the greeting are skipped.
func ParseQMPReply(r *bufio.Reader) (json.RawMessage, error) {
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) == 0 {
				return nil, fmt.Errorf("qmp: connection closed before a reply")
			}
			if !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("qmp: read: %w", err)
			}
		}
		var m qmpMessage
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("qmp: bad message %.100q: %w", line, err)
		}
		switch {
		case m.Error != nil:
			return nil, m.Error
		case m.Return != nil:
			return m.Return, nil
		case m.Event != "" || m.QMP != nil:
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("qmp: connection closed before a reply")
			}
			continue
		default:
			return nil, fmt.Errorf("qmp: message is neither a reply nor an event: %.100q", line)
		}
	}
}

// QMP runs one QMP command (e.g. "device_del" with
// map[string]any{"id": "disk1"}) and returns its "return" value. The VM
// must have been started with Options.QMP.
func (vm *VM) QMP(command string, args any) (json.RawMessage, error) {
	if vm.qmpPath == "" {
		return nil, fmt.Errorf("qmp %s: VM started without Options.QMP", command)
	}
	var conn net.Conn
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The socket appears shortly after qemu starts.
		conn, err = net.Dial("unix", vm.qmpPath)
		if err == nil || time.Now().After(deadline) {
			break
		}
		select {
		case <-vm.done:
			return nil, fmt.Errorf("qmp %s: %w", command, vm.exitError())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	enc := json.NewEncoder(conn)
	if err := enc.Encode(map[string]any{"execute": "qmp_capabilities"}); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	if _, err := ParseQMPReply(r); err != nil {
		return nil, fmt.Errorf("qmp %s: capabilities: %w", command, err)
	}
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	if err := enc.Encode(req); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	ret, err := ParseQMPReply(r)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	return ret, nil
}
