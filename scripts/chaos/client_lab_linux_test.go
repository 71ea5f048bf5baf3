package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ftnas/appliance/api"
	"ftnas/kernel/netns/labtest"
)

// TestClientAgainstNasd runs the real client (this package built, in the
// lab's client namespace) against a stand-alone nasd without faults: the
// checker must find the history and the volume in agreement, and must
// flag a file removed behind the server's back.
func TestClientAgainstNasd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a lab and a nasd (the lab's teardown alone takes 30 s or more on a loaded machine)")
	}
	lab := labtest.Up(t, labtest.Options{Nodes: 1, Clients: 1, FS: "dir"})
	n1, c1 := lab.Node("n1"), lab.Client("c1")
	// nasd and this program in one build (go builds them in parallel).
	tmp := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", tmp+"/", "ftnas/cmd/nasd", ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bin := filepath.Join(tmp, "chaos")
	lab.Nasd(t, "start", "n1", "--bin", filepath.Join(tmp, "nasd"), "--", "--no-smb", "--metrics", "")
	dir := filepath.Join(n1.Volume, "s")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	c := api.NewClient(n1.API)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.AddShare(ctx, api.AddShareRequest{Name: "s", Path: "s", NFS: true}); err != nil {
		t.Fatalf("add share: %v", err)
	}

	hist := filepath.Join(tmp, "history.jsonl")
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", c1.NS, bin, "client", "--server", n1.PublicIP,
		"--share", "s:/s:async", "--workers", "2", "--duration", "2s", "--history", hist, "--prefix", "x-", "--op-limit", "10s").CombinedOutput()
	if err != nil {
		t.Fatalf("chaos client: %v\n%s", err, out)
	}
	f, err := os.Open(hist)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := ParseHistory(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	tree := func() Trees {
		files := map[string]string{}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "x-") {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				files[e.Name()] = string(b)
			}
		}
		return Trees{"n1": {"s": files}}
	}
	final := tree()
	r := Check(CheckInput{Ops: ops, Final: final, Master: "n1", End: time.Now().UnixNano()})
	kinds := map[string]int{}
	for _, o := range ops {
		if o.Result == ResultOK {
			kinds[o.Kind]++
		}
	}
	t.Logf("%d ops (%v), max stall %d ms, %d files", r.Ops, kinds, r.MaxStallMS, len(final["n1"]["s"]))
	if r.Failed() || r.LostAsync != 0 || r.ReadMismatchAsync != 0 || r.Info != 0 || r.Acked != r.Ops {
		t.Fatalf("without faults the history and the volume must agree: %+v", r)
	}
	for _, k := range []string{OpCreate, OpWrite, OpAppend, OpRead, OpRename, OpDelete} {
		if kinds[k] == 0 {
			t.Errorf("no acknowledged %s in %d ops", k, len(ops))
		}
	}
	if len(final["n1"]["s"]) == 0 {
		t.Fatal("no files left to check")
	}
	// A file lost behind the server's back is a loss.
	for name := range final["n1"]["s"] {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		break
	}
	if r := Check(CheckInput{Ops: ops, Final: tree(), Master: "n1", End: time.Now().UnixNano()}); r.LostAsync == 0 {
		t.Fatalf("a removed file is not reported lost: %+v", r)
	}
}
