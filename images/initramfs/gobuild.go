package initramfs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// InitPackage is the import path of ftnas's generic /init.
const InitPackage = "ftnas/images/initramfs/init"

// GoBuild builds the main package pkg into out as a static linux/amd64
// executable (CGO_ENABLED=0, -trimpath, stripped). dir is where go runs
// ("" means the current directory): it must be inside the module that
// holds pkg.
func GoBuild(ctx context.Context, pkg, out, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initramfs: go build %s: %w: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
