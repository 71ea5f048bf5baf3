package labtest

import (
	"strings"
	"testing"
)

// A status as scripts/lab prints it (2 nodes, 1 client, some faults).
const sample = `{"name":"a","prefix":"ftl-a-","index":3,"dir":"/var/tmp/ftl-a","fs":"btrfs","subnet":"10.77.3.0/24","vip":"10.77.3.100","witness":{"name":"w","ns":"ftl-a-w","ip":"10.77.3.254"},"switch_ns":"ftl-a-sw","nodes":[{"name":"n1","ns":"ftl-a-n1","public_if":"pub","public_ip":"10.77.3.11","dedicated":[{"peer":"n2","if":"ded-n2","ip":"10.78.3.1","peer_ip":"10.78.3.2","prefix_len":30}],"state":"/var/tmp/ftl-a/n1/state","volume":"/var/tmp/ftl-a/n1/volume","log":"/var/tmp/ftl-a/n1/nasd.log","api":"/var/tmp/ftl-a/n1/state/nasd.sock","nasd":{"pid":4242,"state":"frozen"},"paths":{"public":{"cut":false,"loss":12.5,"rate":""},"dedicated":{"cut":true,"loss":0,"rate":"10mbit"},"witness":{"cut":true}}},{"name":"n2","ns":"ftl-a-n2","public_if":"pub","public_ip":"10.77.3.12","dedicated":[{"peer":"n1","if":"ded-n1","ip":"10.78.3.2","peer_ip":"10.78.3.1","prefix_len":30}],"state":"/var/tmp/ftl-a/n2/state","volume":"/var/tmp/ftl-a/n2/volume","log":"/var/tmp/ftl-a/n2/nasd.log","api":"/var/tmp/ftl-a/n2/state/nasd.sock","nasd":{"pid":0,"state":"stopped"},"paths":{"public":{"cut":false,"loss":0,"rate":""},"dedicated":{"cut":false,"loss":0,"rate":""},"witness":{"cut":false}}}],"clients":[{"name":"c1","ns":"ftl-a-c1","ip":"10.77.3.51","paths":{"public":{"cut":false,"loss":0,"rate":""},"witness":{"cut":false}}}]}`

func TestParseInfo(t *testing.T) {
	in, err := ParseInfo([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != "a" || in.Index != 3 || in.VIP != "10.77.3.100" || in.Witness.NS != "ftl-a-w" {
		t.Errorf("lab fields: %+v", in)
	}
	if len(in.Nodes) != 2 || len(in.Clients) != 1 {
		t.Fatalf("got %d nodes, %d clients; want 2, 1", len(in.Nodes), len(in.Clients))
	}
	n1 := in.Nodes[0]
	if n1.PublicIP != "10.77.3.11" || n1.Dedicated[0].PeerIP != "10.78.3.2" || n1.Dedicated[0].If != "ded-n2" {
		t.Errorf("n1: %+v", n1)
	}
	if n1.Nasd.PID != 4242 || n1.Nasd.State != "frozen" {
		t.Errorf("n1 nasd: %+v", n1.Nasd)
	}
	p := n1.Paths
	if p.Public.Loss != 12.5 || p.Public.Cut || !p.Dedicated.Cut || p.Dedicated.Rate != "10mbit" || !p.Witness.Cut {
		t.Errorf("n1 paths: %+v", p)
	}
	if in.Clients[0].IP != "10.77.3.51" || in.Clients[0].NS != "ftl-a-c1" {
		t.Errorf("c1: %+v", in.Clients[0])
	}
}

func TestParseInfoRejects(t *testing.T) {
	for _, tc := range []struct{ from, to, err string }{
		{`"name":"a"`, `"name":""`, "missing"},
		{`"subnet":"10.77.3.0/24"`, `"subnet":"10.77.3.0"`, "subnet"},
		{`"public_ip":"10.77.3.12"`, `"public_ip":"10.77.3"`, "n2 address"},
		{`"ns":"ftl-a-c1"`, `"ns":"other-c1"`, "lacks the lab prefix"},
		{`"peer_ip":"10.78.3.2"`, `"peer_ip":""`, "n1->n2 peer address"},
	} {
		b := strings.Replace(sample, tc.from, tc.to, 1)
		if b == sample {
			t.Fatalf("case %q does not change the sample", tc.from)
		}
		if _, err := ParseInfo([]byte(b)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s -> %s: %v; want error containing %q", tc.from, tc.to, err, tc.err)
		}
	}
	if _, err := ParseInfo([]byte("lab a: down\n")); err == nil || !strings.Contains(err.Error(), "decode") {
		t.Errorf("not JSON: %v; want a decode error", err)
	}
}

func TestNewName(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		n := newName()
		if len(n) != 7 || n[0] != 't' || strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			t.Fatalf("name %q: want t + 6 of [a-z0-9]", n)
		}
		seen[n] = true
	}
	if len(seen) < 99 {
		t.Errorf("only %d distinct names in 100", len(seen))
	}
}
