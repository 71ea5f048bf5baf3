package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// maxSocketPath is the longest path a unix socket can bind to: sun_path
// is 108 bytes including the terminating NUL.
const maxSocketPath = 107

// SocketName is the socket's file name in the state directory.
const SocketName = "nasd.sock"

// SocketPath returns where nasd listens for a state directory:
// STATEDIR/nasd.sock, unless that is too long for a unix socket; then
// /run/ftnas/<hash of STATEDIR>.sock, or TMPDIR/ftnas-<hash>.sock where
// /run cannot be used. nasd and nasctl compute the same path.
func SocketPath(stateDir string) string {
	return socketPath(stateDir, "/run", os.TempDir(), dirWritable)
}

func socketPath(stateDir, runDir, tmpDir string, writable func(string) bool) string {
	p := filepath.Join(stateDir, SocketName)
	if len(p) <= maxSocketPath {
		return p
	}
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = filepath.Clean(stateDir)
	}
	sum := sha256.Sum256([]byte(abs))
	name := hex.EncodeToString(sum[:6]) + ".sock"
	dir := filepath.Join(runDir, "ftnas")
	// An existing /run/ftnas wins, so a user who cannot write /run still
	// finds the socket nasd (as root) made there.
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() || writable(runDir) {
		return filepath.Join(dir, name)
	}
	return filepath.Join(tmpDir, "ftnas-"+name)
}

// Listen listens on a unix socket at socketPath for the API. It makes the
// parent directory (0700) when missing, removes a stale socket left by a
// dead nasd — but only when nothing answers on it — and makes the socket
// mode 0600. The listener removes the socket when closed.
func Listen(socketPath string) (net.Listener, error) {
	if len(socketPath) > maxSocketPath {
		return nil, fmt.Errorf("api: listen on %s: path is %d bytes, a unix socket allows at most %d", socketPath, len(socketPath), maxSocketPath)
	}
	if err := os.MkdirAll(filepath.Dir(socketPath), 0o700); err != nil {
		return nil, fmt.Errorf("api: listen on %s: create directory: %w", socketPath, err)
	}
	fi, err := os.Lstat(socketPath)
	switch {
	case err == nil && fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("api: listen on %s: it exists and is not a socket (%s); not touching it", socketPath, fi.Mode().Type())
	case err == nil:
		conn, derr := net.DialTimeout("unix", socketPath, time.Second)
		if derr == nil {
			conn.Close()
			return nil, fmt.Errorf("api: listen on %s: another nasd is serving %s", socketPath, socketPath)
		}
		if !errors.Is(derr, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("api: listen on %s: is another nasd serving it? %w", socketPath, derr)
		}
		if err := os.Remove(socketPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("api: listen on %s: remove stale socket: %w", socketPath, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("api: listen on %s: %w", socketPath, err)
	}
	l, err := net.Listen("unix", socketPath)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", socketPath, err)
	}
	if err := os.Chmod(socketPath, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("api: listen on %s: chmod 0600: %w", socketPath, err)
	}
	return l, nil
}
