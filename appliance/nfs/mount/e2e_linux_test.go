package mount_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"ftnas/appliance/nfs/mount"
	"ftnas/appliance/nfs/portmap"
	"ftnas/appliance/nfs/rpc"
)

const netnsChildEnv = "FTNAS_MOUNT_E2E_NETNS"

// TestStockClients proves that stock ONC RPC clients understand our
// portmapper and MOUNT server: rpcinfo (portmapper DUMP and a NULL call
// through GETPORT), showmount (portmapper GETPORT plus MOUNT EXPORT) and
// libnfs's nfs-ls (MOUNT EXPORT). Those tools only talk to port 111, so
// the test re-runs itself in a fresh network namespace (unshare -n) where
// 111 is free. nfs-ls beyond the export list needs the NFS program, which
// is not part of this package.
func TestStockClients(t *testing.T) {
	if os.Getenv(netnsChildEnv) == "" {
		runInNetns(t)
		return
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := rpc.NewServer(rpc.Options{Log: log})
	pm := portmap.New(log)
	ms := mount.New(&fakeExports{}, log)
	srv.Register(portmap.Prog, portmap.Vers, pm.Handler())
	srv.Register(mount.Prog, mount.Vers, ms.Handler())
	srv.Register(mount.Prog, mount.Vers1, ms.Handler())

	listen := func(addr string) (net.Listener, net.PacketConn) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		go srv.ServeUDP(pc)
		return ln, pc
	}
	listen("127.0.0.1:111")
	mln, _ := listen("127.0.0.1:0")
	mport := uint32(mln.Addr().(*net.TCPAddr).Port)
	defer srv.Shutdown(context.Background())
	for _, prot := range []uint32{portmap.TCP, portmap.UDP} {
		pm.Set(portmap.Mapping{Prog: portmap.Prog, Vers: portmap.Vers, Prot: prot, Port: portmap.Port})
		pm.Set(portmap.Mapping{Prog: mount.Prog, Vers: mount.Vers, Prot: prot, Port: mport})
		pm.Set(portmap.Mapping{Prog: mount.Prog, Vers: mount.Vers1, Prot: prot, Port: mport})
	}

	run := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		t.Logf("$ %s %s\n%s", name, strings.Join(args, " "), out)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return string(out)
	}
	expect := func(out string, patterns ...string) {
		t.Helper()
		for _, p := range patterns {
			if !regexp.MustCompile(`(?m)` + p).MatchString(out) {
				t.Errorf("output does not match %q", p)
			}
		}
	}

	out := run("rpcinfo", "-p", "127.0.0.1")
	expect(out,
		`^\s+100000\s+2\s+tcp\s+111\s+portmapper$`,
		`^\s+100000\s+2\s+udp\s+111\s+portmapper$`,
		fmt.Sprintf(`^\s+100005\s+3\s+tcp\s+%d\s+mountd$`, mport),
		fmt.Sprintf(`^\s+100005\s+1\s+udp\s+%d\s+mountd$`, mport))
	expect(run("rpcinfo", "-T", "tcp", "127.0.0.1", "100005", "3"), `program 100005 version 3 ready and waiting`)
	expect(run("rpcinfo", "-T", "udp", "127.0.0.1", "100005", "3"), `program 100005 version 3 ready and waiting`)
	expect(run("showmount", "-e", "127.0.0.1"), `^/media\s+\(everyone\)$`, `^/private\s+10\.0\.0\.0/8,admin$`)
	expect(run("nfs-ls", "-D", "nfs://127.0.0.1"), `^nfs://127\.0\.0\.1/media$`, `^nfs://127\.0\.0\.1/private$`)
}

// runInNetns re-runs TestStockClients in a new network namespace.
func runInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace to own port 111")
	}
	for _, tool := range []string{"unshare", "ip", "rpcinfo", "showmount", "nfs-ls"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-n", "--", os.Args[0], "-test.run=^TestStockClients$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a new network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("stock clients in a network namespace: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestStockClients") {
		t.Fatal("the namespaced run did not pass TestStockClients")
	}
}
