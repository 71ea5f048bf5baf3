package clustertest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"ftnas/appliance/api"
	"ftnas/appliance/nfs/xdr"
	"ftnas/kernel/netns"
	"ftnas/kernel/netns/labtest"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	nfsrpc "github.com/willscott/go-nfs-client/nfs/rpc"
)

// pair is a lab with nasd on n1 and n2 and API clients for both.
type pair struct {
	t   *testing.T
	lab *labtest.Lab
	api map[string]*api.Client
	vip string
}

func (p *pair) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	p.t.Cleanup(cancel)
	return ctx
}

// start starts nasd on node (NFS only: this test is about who serves and
// what the journal carries; SMB over the VIP is left to the chaos checker).
func (p *pair) start(node string) {
	p.t.Helper()
	p.lab.Nasd(p.t, "start", node, "--", "--no-smb", "--metrics", "")
}

func (p *pair) status(node string) api.ClusterStatus {
	p.t.Helper()
	s, err := p.api[node].ClusterStatus(p.ctx())
	if err != nil {
		return api.ClusterStatus{State: "unreachable: " + err.Error()}
	}
	return s
}

// waitFor polls both nodes' status until cond holds (real processes over
// real sockets: there is no fake clock to advance, so wait with a
// deadline) and returns how long it took.
func (p *pair) waitFor(what string, within time.Duration, cond func(n1, n2 api.ClusterStatus) bool) time.Duration {
	p.t.Helper()
	start := time.Now()
	var s1, s2 api.ClusterStatus
	for time.Since(start) < within {
		s1, s2 = p.status("n1"), p.status("n2")
		if cond(s1, s2) {
			return time.Since(start)
		}
		poll := time.NewTimer(50 * time.Millisecond)
		<-poll.C
	}
	p.t.Fatalf("%s: not within %v\n n1: %+v\n n2: %+v", what, within, s1, s2)
	return 0
}

// caughtUp: n1 serves a log it has described, n2 has acknowledged all of
// it and counts itself a copy (right after a hand-over n2 still counts
// itself one until its position moves to n1's new log: then it is no
// copy until caught up).
func caughtUp(s1, s2 api.ClusterStatus) bool {
	r := s1.Replication
	return s1.Serving && r.LastSeq > 0 && r.AckedSeq == r.LastSeq && s1.Journal == r.LastSeq &&
		s2.Synced && s2.Journal >= s1.Journal
}

// waitNode is waitFor on one node (the other may be frozen).
func (p *pair) waitNode(node, what string, within time.Duration, cond func(api.ClusterStatus) bool) {
	p.t.Helper()
	start := time.Now()
	var s api.ClusterStatus
	for time.Since(start) < within {
		if s = p.status(node); cond(s) {
			return
		}
		poll := time.NewTimer(50 * time.Millisecond)
		<-poll.C
	}
	p.t.Fatalf("%s: not within %v\n %s: %+v", what, within, node, s)
}

// read reads share/file through the VIP from the client namespace with
// libnfs's nfs-cat (portmapper, MOUNT and NFSv3 on the VIP).
func (p *pair) read(file string) (string, error) { return p.readOnce(file, 15*time.Second) }

// readOnce is read with a timeout.
func (p *pair) readOnce(file string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", p.lab.Client("c1").NS,
		"nfs-cat", "nfs://"+p.vip+"/data/"+file).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("nfs-cat through %s: %v: %s", p.vip, err, out)
	}
	return string(out), nil
}

// nfsMount mounts export through the VIP from the client namespace with
// go-nfs-client (its sockets are made inside the namespace), retrying
// while a takeover settles.
func (p *pair) nfsMount(export string) *nfsc.Target {
	p.t.Helper()
	var tg *nfsc.Target
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		err = netns.Do(p.lab.Client("c1").NS, func() error {
			m, err := nfsc.DialMount(p.vip, 2*time.Second)
			if err != nil {
				return err
			}
			p.t.Cleanup(func() { m.Close() })
			tg, err = m.Mount(export, nfsrpc.NewAuthUnix("ct", 0, 0).Auth())
			return err
		})
		if err == nil {
			return tg
		}
		poll := time.NewTimer(100 * time.Millisecond)
		<-poll.C
	}
	p.t.Fatalf("mount %s through %s: %v", export, p.vip, err)
	return nil
}

// writeArgs are WRITE3args (RFC 1813) for go-nfs-client's raw Call.
type writeArgs struct {
	nfsrpc.Header
	FH     []byte
	Offset uint64
	Count  uint32
	How    uint32
	Data   []byte
}

// writeVerifier writes data UNSTABLE at offset 0 of the file fh names,
// through the VIP, and returns the write verifier of the reply: what a
// client compares with COMMIT's to know whether it must send its
// uncommitted writes again. It retries on a fresh mount while a role
// change settles.
func (p *pair) writeVerifier(fh []byte, data string) [8]byte {
	p.t.Helper()
	var last error
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		tg := p.nfsMount("/data")
		res, err := tg.Call(&writeArgs{
			Header: nfsrpc.Header{Rpcvers: 2, Prog: nfsc.Nfs3Prog, Vers: nfsc.Nfs3Vers, Proc: nfsc.NFSProc3Write,
				Cred: nfsrpc.NewAuthUnix("ct", 0, 0).Auth(), Verf: nfsrpc.AuthNull},
			FH: fh, Count: uint32(len(data)), How: 0, Data: []byte(data),
		})
		if err == nil {
			var b []byte
			if b, err = io.ReadAll(res); err == nil {
				r := xdr.NewReader(b)
				if st := r.Uint32(); st != 0 {
					p.t.Fatalf("WRITE UNSTABLE through the VIP: NFS status %d", st)
				}
				if r.Bool() { // wcc_data: pre_op_attr, post_op_attr
					r.FixedOpaque(24)
				}
				if r.Bool() {
					r.FixedOpaque(84)
				}
				count, committed, verf := r.Uint32(), r.Uint32(), r.FixedOpaque(8)
				if err = r.Err(); err == nil {
					if count != uint32(len(data)) || committed != 0 {
						p.t.Fatalf("WRITE UNSTABLE: count %d committed %d", count, committed)
					}
					return [8]byte(verf)
				}
			}
		}
		last = err
		poll := time.NewTimer(100 * time.Millisecond)
		<-poll.C
	}
	p.t.Fatalf("WRITE UNSTABLE through %s: %v", p.vip, last)
	return [8]byte{}
}

// write writes file with content through the VIP from the client
// namespace with libnfs's nfs-cp.
func (p *pair) write(file, content string) {
	p.t.Helper()
	src := filepath.Join(p.t.TempDir(), file)
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", p.lab.Client("c1").NS,
		"nfs-cp", src, "nfs://"+p.vip+"/data/"+file).CombinedOutput()
	if err != nil {
		p.t.Fatalf("nfs-cp %s through %s: %v: %s", file, p.vip, err, out)
	}
}

// servedBy asserts that node serves the VIP and that file reads as want
// through it.
func (p *pair) servedBy(node, file, want string) {
	p.t.Helper()
	if s := p.status(node); !s.Serving {
		p.t.Fatalf("%s should serve: %+v", node, s)
	}
	var got string
	var err error
	// The client may need a moment after a takeover (its ARP cache
	// learns the new MAC from the gratuitous ARPs).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got, err = p.read(file); err == nil && got == want {
			return
		}
		poll := time.NewTimer(100 * time.Millisecond)
		<-poll.C
	}
	p.t.Fatalf("through the VIP (served by %s) %s should read %q: got %q, %v", node, file, want, got, err)
}

// onVolume waits until node's own volume holds file with content want
// (the journal brought it there).
func (p *pair) onVolume(node, file, want string) {
	p.t.Helper()
	path := filepath.Join(p.lab.Node(node).Volume, "data", file)
	start := time.Now()
	for time.Since(start) < 20*time.Second {
		if b, err := os.ReadFile(path); err == nil && string(b) == want {
			return
		}
		poll := time.NewTimer(50 * time.Millisecond)
		<-poll.C
	}
	b, err := os.ReadFile(path)
	p.t.Fatalf("%s: %s should hold %q by replication: %q, %v\n%s: %+v", node, path, want, b, err, node, p.status(node).Replication)
}

func serving(s api.ClusterStatus, state string) bool { return s.Serving && s.State == state }

// newPair starts nasd on the lab's nodes n1 and n2 with API clients.
func newPair(t *testing.T, lab *labtest.Lab) *pair {
	p := &pair{t: t, lab: lab, api: map[string]*api.Client{}, vip: lab.VIP}
	for _, n := range []string{"n1", "n2"} {
		p.start(n)
		p.api[n] = api.NewClient(lab.Node(n).API)
		t.Cleanup(p.api[n].Close)
	}
	return p
}

// initRequest makes n1 the primary of a pair with n2 over both paths.
func initRequest(lab *labtest.Lab) api.ClusterInitRequest {
	n1, n2 := lab.Node("n1"), lab.Node("n2")
	return api.ClusterInitRequest{
		VIP: lab.VIP + "/24", Public: n1.PublicIP, PeerPublic: n2.PublicIP,
		Dedicated: n1.Dedicated[0].IP, PeerDedicated: n1.Dedicated[0].PeerIP, Witness: lab.Witness.IP,
	}
}

// form makes the pair (n1 primary, n2 its standby) and waits until it is
// protected.
func (p *pair) form() {
	p.t.Helper()
	init, err := p.api["n1"].InitCluster(p.ctx(), initRequest(p.lab))
	if err != nil {
		p.t.Fatalf("cluster init: %v", err)
	}
	if _, err := p.api["n2"].JoinCluster(p.ctx(), api.ClusterJoinRequest{Token: init.Token}); err != nil {
		p.t.Fatalf("cluster join: %v", err)
	}
	p.waitFor("n1 master, n2 slave, protected", 30*time.Second, func(s1, s2 api.ClusterStatus) bool {
		return serving(s1, "master") && s2.State == "slave" && !s2.Serving && s1.Protection == api.ProtectionProtected
	})
}
