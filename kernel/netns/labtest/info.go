package labtest

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// Info is a lab as `scripts/lab status --json` describes it.
type Info struct {
	Name     string   `json:"name"`
	Prefix   string   `json:"prefix"` // every namespace's name starts with it
	Index    int      `json:"index"`  // X in 10.77.X.0/24 and 10.78.X.0/24
	Dir      string   `json:"dir"`    // the lab dir: node folders, images, logs
	FS       string   `json:"fs"`     // "btrfs" (each volume its own filesystem) or "dir"
	Subnet   string   `json:"subnet"` // the public network
	VIP      string   `json:"vip"`    // reserved, never assigned by the lab
	Witness  Witness  `json:"witness"`
	SwitchNS string   `json:"switch_ns"`
	Nodes    []Node   `json:"nodes"`
	Clients  []Client `json:"clients"`
}

// Witness is the witness / gateway on the public network.
type Witness struct {
	Name string `json:"name"`
	NS   string `json:"ns"`
	IP   string `json:"ip"`
}

// Node is an appliance node.
type Node struct {
	Name      string `json:"name"` // n1, n2, ...
	NS        string `json:"ns"`
	PublicIf  string `json:"public_if"`
	PublicIP  string `json:"public_ip"`
	Dedicated []Link `json:"dedicated"` // one per peer node
	State     string `json:"state"`     // nasd --state folder
	Volume    string `json:"volume"`    // nasd --volume folder
	Log       string `json:"log"`       // nasd's log
	API       string `json:"api"`       // nasd's API socket
	Nasd      Nasd   `json:"nasd"`
	Paths     Paths  `json:"paths"`
}

// Link is a node's end of a dedicated link.
type Link struct {
	Peer      string `json:"peer"`
	If        string `json:"if"`
	IP        string `json:"ip"`
	PeerIP    string `json:"peer_ip"`
	PrefixLen int    `json:"prefix_len"`
}

// Nasd is the state of a node's nasd: "running", "frozen" or "stopped"
// (PID 0).
type Nasd struct {
	PID   int    `json:"pid"`
	State string `json:"state"`
}

// Client is a client host on the public network.
type Client struct {
	Name  string `json:"name"` // c1, c2, ...
	NS    string `json:"ns"`
	IP    string `json:"ip"`
	Paths Paths  `json:"paths"`
}

// Paths are the faults applied to a member's paths.
type Paths struct {
	Public    Path `json:"public"`
	Dedicated Path `json:"dedicated"` // nodes only
	Witness   struct {
		Cut bool `json:"cut"`
	} `json:"witness"`
}

// Path is one path's faults.
type Path struct {
	Cut  bool    `json:"cut"`
	Loss float64 `json:"loss"` // percent
	Rate string  `json:"rate"` // tbf rate, "" when unlimited
}

// ParseInfo decodes and checks `scripts/lab status --json`.
func ParseInfo(b []byte) (Info, error) {
	var in Info
	if err := json.Unmarshal(b, &in); err != nil {
		return Info{}, fmt.Errorf("labtest: decode lab status: %w", err)
	}
	if err := in.check(); err != nil {
		return Info{}, fmt.Errorf("labtest: lab status: %w", err)
	}
	return in, nil
}

func (in *Info) check() error {
	if in.Name == "" || in.Prefix == "" || in.Dir == "" || in.SwitchNS == "" {
		return fmt.Errorf("missing name, prefix, dir or switch_ns")
	}
	if _, err := netip.ParsePrefix(in.Subnet); err != nil {
		return fmt.Errorf("subnet: %w", err)
	}
	ips := map[string]string{"vip": in.VIP, "witness": in.Witness.IP}
	for _, n := range in.Nodes {
		ips[n.Name] = n.PublicIP
		for _, l := range n.Dedicated {
			ips[n.Name+"->"+l.Peer] = l.IP
			ips[n.Name+"->"+l.Peer+" peer"] = l.PeerIP
		}
	}
	for _, c := range in.Clients {
		ips[c.Name] = c.IP
	}
	for what, ip := range ips {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("%s address: %w", what, err)
		}
	}
	for _, ns := range append(in.namespaces(), in.SwitchNS) {
		if len(ns) <= len(in.Prefix) || ns[:len(in.Prefix)] != in.Prefix {
			return fmt.Errorf("namespace %q lacks the lab prefix %q", ns, in.Prefix)
		}
	}
	return nil
}

// namespaces are the members' namespaces (not the switch's).
func (in *Info) namespaces() []string {
	ns := []string{in.Witness.NS}
	for _, n := range in.Nodes {
		ns = append(ns, n.NS)
	}
	for _, c := range in.Clients {
		ns = append(ns, c.NS)
	}
	return ns
}
