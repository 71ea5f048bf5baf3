package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	nfsrpc "github.com/willscott/go-nfs-client/nfs/rpc"
)

// maxContent bounds what a read returns: the file names a node.
const maxContent = 256

// nfsTarget is the file a client reads through the VIP.
type nfsTarget struct {
	Server string
	Export string
	File   string
}

func (o *nfsTarget) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.Server, "server", "", "server IPv4 address, the VIP (portmapper on port 111; required)")
	fs.StringVar(&o.Export, "export", "/data", "export to mount")
	fs.StringVar(&o.File, "file", "whoami", "file in the export to read")
}

func (o *nfsTarget) check() error {
	a, err := netip.ParseAddr(o.Server)
	if err != nil || !a.Is4() {
		return fmt.Errorf("--server %q: want an IPv4 address", o.Server)
	}
	if !strings.HasPrefix(o.Export, "/") {
		return fmt.Errorf("--export %q: want an absolute path", o.Export)
	}
	if o.File == "" || strings.HasPrefix(o.File, "/") {
		return fmt.Errorf("--file %q: want a path relative to the export", o.File)
	}
	return nil
}

// read does what a client that starts from scratch does: portmapper
// GETPORT and MOUNT MNT, then on the NFS port FSINFO, LOOKUP and READ. It
// returns the file's content without surrounding white space. Every
// connection is fresh. The file is not closed (go-nfs-client's Close
// sends a COMMIT, which a reader has no business sending); the
// connections are.
func (o nfsTarget) read() (string, error) {
	m, err := nfsc.DialMount(o.Server, time.Second)
	if err != nil {
		return "", fmt.Errorf("portmapper/MOUNT: %w", err)
	}
	defer m.Close()
	tgt, err := m.Mount(o.Export, nfsrpc.NewAuthUnix("failoverbench", 0, 0).Auth())
	if err != nil {
		return "", fmt.Errorf("MNT %s: %w", o.Export, err)
	}
	defer tgt.Close()
	f, err := tgt.Open(o.File)
	if err != nil {
		return "", fmt.Errorf("LOOKUP %s: %w", o.File, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxContent))
	if err != nil {
		return "", fmt.Errorf("READ %s: %w", o.File, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// reader reads the file and then looks up who answered.
func (o nfsTarget) reader() reader {
	return reader{read: o.read, mac: func() (string, error) { return neighbourMAC(o.Server) }}
}

// errAttemptTimeout is a read that did not finish within its bound.
var errAttemptTimeout = errors.New("no answer within the attempt bound")

// boundedAnswer is bounded for a reader.
func boundedAnswer(ctx context.Context, d time.Duration, r reader) (answer, error) {
	var a answer
	_, err := bounded(ctx, d, func() (string, error) {
		var err error
		a, err = r.once()
		return "", err
	})
	if err != nil {
		return answer{}, err
	}
	return a, nil
}

// bounded runs read and waits at most d for it. A read still running
// then is abandoned (go-nfs-client cannot be cancelled): its goroutine
// ends whenever the read does.
func bounded(ctx context.Context, d time.Duration, read func() (string, error)) (string, error) {
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1) // the abandoned read must not block
	go func() {
		s, err := read()
		ch <- result{s, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-t.C:
		return "", fmt.Errorf("%w (%v)", errAttemptTimeout, d)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
