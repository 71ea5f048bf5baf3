// Command fetch downloads and unpacks the Debian packages the qemu lab
// boots (the cloud kernel, mdadm and systemd-boot-efi) into the package
// cache ($FTNAS_CACHE, default /var/cache/ftnas), so tests find them
// without the network. It prints what it fetched. Run it as root (or with a
// writable FTNAS_CACHE) on a Debian host:
//
//	go run ./images/cmd/fetch
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"ftnas/images/deb"
	"ftnas/images/kernel"
)

func main() {
	cache := flag.String("cache", deb.DefaultCacheDir(), "package cache directory")
	meta := flag.String("kernel", kernel.MetaPackage, "kernel meta-package")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	opts := deb.Options{CacheDir: *cache, Logger: log}
	k, err := kernel.Fetch(ctx, *meta, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fetch:", err)
		os.Exit(1)
	}
	fmt.Printf("kernel %s %s\n", k.Release, k.Vmlinuz)
	for _, name := range []string{"mdadm", "systemd-boot-efi"} {
		p, err := deb.Fetch(ctx, name, opts)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fetch:", err)
			os.Exit(1)
		}
		fmt.Printf("%s %s %s\n", p.Name, p.Version, p.Root)
	}
}
