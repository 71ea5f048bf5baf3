package appliance

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// netnsEnv marks the re-executed test binary running in its own network
// namespace.
const netnsEnv = "FTNAS_TEST_NETNS"

// TestMain runs the tests in a private network namespace when it can, so
// that nasd can take the standard ports (111 for the portmapper that stock
// NFS clients ask, 445, 2049) without touching the host's.
func TestMain(m *testing.M) {
	if os.Getenv(netnsEnv) == "" && os.Geteuid() == 0 {
		if path, err := exec.LookPath("unshare"); err == nil {
			cmd := exec.Command(path, append([]string{"--net", "--", os.Args[0]}, os.Args[1:]...)...)
			cmd.Env = append(os.Environ(), netnsEnv+"=1")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					os.Exit(ee.ExitCode())
				}
				fmt.Fprintln(os.Stderr, "re-exec in a network namespace:", err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	if os.Getenv(netnsEnv) != "" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bring up lo: %v: %s\n", err, out)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}
