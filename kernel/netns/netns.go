package netns

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
)

// RunDir is where `ip netns` keeps named namespaces.
const RunDir = "/run/netns"

// Path returns the namespace file for name: an absolute path as is, or
// RunDir/name for an `ip netns` name. It fails naming what is wrong with
// name; the empty name (the caller's namespace) has no path.
func Path(name string) (string, error) {
	switch {
	case name == "":
		return "", fmt.Errorf("netns: empty namespace name")
	case strings.HasPrefix(name, "/"):
		if filepath.Clean(name) != name {
			return "", fmt.Errorf("netns: namespace path %q is not clean", name)
		}
		return name, nil
	case name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255:
		return "", fmt.Errorf("netns: bad namespace name %q (an `ip netns` name or an absolute path)", name)
	}
	return filepath.Join(RunDir, name), nil
}

// where names ns in errors.
func where(ns string) string {
	if ns == "" {
		return "current namespace"
	}
	return ns
}

// Listen is net.Listen with the socket made inside namespace ns.
func Listen(ns, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := Do(ns, func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: listen %s %s in %s: %w", network, addr, where(ns), err)
	}
	return ln, nil
}

// ListenPacket is net.ListenPacket with the socket made inside namespace ns.
func ListenPacket(ns, network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := Do(ns, func() (err error) {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: listen %s %s in %s: %w", network, addr, where(ns), err)
	}
	return pc, nil
}

// Dial is net.Dial with the socket made inside namespace ns. Use IP
// literals: name lookups may run on other threads, outside ns.
func Dial(ns, network, addr string) (net.Conn, error) {
	return DialContext(context.Background(), ns, network, addr)
}

// DialContext is net.Dialer.DialContext with the socket made inside
// namespace ns; ctx bounds the connect.
func DialContext(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := Do(ns, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: dial %s %s in %s: %w", network, addr, where(ns), err)
	}
	return c, nil
}

// Start starts cmd with its process inside namespace ns (only the network
// namespace changes: the process shares the caller's mounts, so /sys still
// shows the caller's interfaces). Wait for it as usual.
func Start(ns string, cmd *exec.Cmd) error {
	if err := Do(ns, cmd.Start); err != nil {
		return fmt.Errorf("netns: start %s in %s: %w", strings.Join(cmd.Args, " "), where(ns), err)
	}
	return nil
}

// Exec runs argv inside namespace ns until it exits or ctx ends, and
// returns its combined output. A failure names the command and the
// namespace and carries the output.
func Exec(ctx context.Context, ns string, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("netns: exec in %s: no command", where(ns))
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := Start(ns, cmd); err != nil {
		return nil, err
	}
	if err := cmd.Wait(); err != nil {
		return out.Bytes(), fmt.Errorf("netns: %s in %s: %w: %s", strings.Join(argv, " "), where(ns), err,
			strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}
