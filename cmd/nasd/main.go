// Command nasd is the ftnas daemon: it parses flags and runs the appliance.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"ftnas/appliance"
	"ftnas/raid"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var cfg appliance.Config
	flag.StringVar(&cfg.StateDir, "state", appliance.DefaultStateDir, "state directory (configuration and state in ftnas.db)")
	flag.StringVar(&cfg.Volume, "volume", appliance.DefaultVolume, "volume directory holding the shares' data")
	flag.StringVar(&cfg.Listen, "listen", "", "IP address to serve NFS and SMB on (default: all)")
	flag.StringVar(&cfg.API, "api", "", "unix socket of the local API (default: STATE/nasd.sock)")
	flag.StringVar(&cfg.Metrics, "metrics", appliance.DefaultMetrics, "TCP address of Prometheus /metrics (empty: off)")
	flag.BoolVar(&cfg.NoSMB, "no-smb", false, "do not run Samba")
	flag.StringVar(&cfg.BondDatapath, "bond-datapath", "auto", "network bond datapath: auto (kernel bonding driver if loaded, else userland), userland or kernel")
	flag.StringVar(&cfg.BPFDir, "bpf-dir", appliance.DefaultBPFDir, "BPF filesystem folder where the cluster's lease fence is pinned to outlive nasd (empty: not pinned)")
	flag.BoolVar(&cfg.RaidAutoAdopt, "raid-auto-adopt", false, "adopt a blank disk plugged in while an md array is degraded (partition it like the others, copy the ESP, rebuild onto it)")
	flag.DurationVar(&cfg.ScrubEvery, "raid-scrub-every", raid.DefaultScrubEvery, "how often each redundant md array is checked (0: never)")
	flag.IntVar(&cfg.NFSPort, "nfs-port", 2049, "NFS and MOUNT port")
	flag.IntVar(&cfg.PortmapPort, "portmap-port", 111, "portmapper port")
	flag.IntVar(&cfg.SMBPort, "smb-port", 445, "SMB port")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "nasd: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	switch {
	case cfg.ScrubEvery == 0:
		cfg.ScrubEvery = -1 // Config's 0 is the default; the flag's 0 is never
	case cfg.ScrubEvery < time.Hour:
		fmt.Fprintf(os.Stderr, "nasd: --raid-scrub-every %v: use an hour or more (0 turns scheduled checks off)\n", cfg.ScrubEvery)
		os.Exit(2)
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Version = version
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := appliance.Run(ctx, cfg, nil); err != nil {
		cfg.Log.Error("nasd failed", "err", err)
		os.Exit(1)
	}
}
