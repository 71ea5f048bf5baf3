package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ResolveSharePath returns the absolute path of the share folder rel
// inside volume, checking on the way that no component of rel is a
// symbolic link (so a share can never lead out of the volume) and that each
// is a directory. With create, missing folders are made (mode 0755).
//
// It walks rel one component at a time with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), and with fstatat(AT_SYMLINK_NOFOLLOW) + openat
// (O_NOFOLLOW) where the kernel lacks openat2. The volume path itself is
// trusted and may be a symlink.
func ResolveSharePath(volume, rel string, create bool) (string, error) {
	return resolveSharePath(volume, rel, create, true)
}

func resolveSharePath(volume, rel string, create, tryOpenat2 bool) (string, error) {
	clean, err := CleanSharePath(rel)
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(volume) {
		return "", fmt.Errorf("%w volume path %q: must be absolute", ErrInvalid, volume)
	}
	volume = filepath.Clean(volume)
	vfd, err := unix.Open(volume, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return "", fmt.Errorf("store: resolve share path: volume %s is missing (not mounted?)", volume)
	case errors.Is(err, unix.ENOTDIR):
		return "", fmt.Errorf("store: resolve share path: volume %s is not a directory", volume)
	case err != nil:
		return "", fmt.Errorf("store: resolve share path: open volume %s: %w", volume, err)
	}
	dirfd := vfd
	defer func() { unix.Close(dirfd) }()
	useOpenat2 := tryOpenat2
	comps := strings.Split(clean, "/")
	for i, c := range comps {
		sofar := strings.Join(comps[:i+1], "/")
		fd, err := openDirBeneath(dirfd, c, &useOpenat2)
		if errors.Is(err, unix.ENOENT) && create {
			if merr := unix.Mkdirat(dirfd, c, 0o755); merr != nil && !errors.Is(merr, unix.EEXIST) {
				return "", fmt.Errorf("store: resolve share path: create folder %s in volume %s: %w", sofar, volume, merr)
			}
			fd, err = openDirBeneath(dirfd, c, &useOpenat2)
		}
		switch {
		case errors.Is(err, unix.ELOOP):
			return "", fmt.Errorf("%w share path %q: %s is a symbolic link; symbolic links are refused so a share cannot lead out of the volume", ErrInvalid, rel, sofar)
		case errors.Is(err, unix.ENOTDIR):
			return "", fmt.Errorf("%w share path %q: %s is not a directory", ErrInvalid, rel, sofar)
		case errors.Is(err, unix.ENOENT):
			return "", fmt.Errorf("share path %q: folder %s does not exist in volume %s: %w", rel, sofar, volume, ErrNotFound)
		case errors.Is(err, unix.EXDEV):
			return "", fmt.Errorf("%w share path %q: %s leads out of the volume", ErrInvalid, rel, sofar)
		case err != nil:
			return "", fmt.Errorf("store: resolve share path: open %s in volume %s: %w", sofar, volume, err)
		}
		unix.Close(dirfd)
		dirfd = fd
	}
	return filepath.Join(volume, clean), nil
}

// openDirBeneath opens the directory name (one component) under dirfd for
// O_PATH, refusing symlinks with ELOOP and non-directories with ENOTDIR.
// When openat2 is unavailable it clears *useOpenat2 and falls back.
func openDirBeneath(dirfd int, name string, useOpenat2 *bool) (int, error) {
	if *useOpenat2 {
		fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.E2BIG) && !errors.Is(err, unix.EPERM) {
			return fd, err
		}
		*useOpenat2 = false
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return -1, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return -1, unix.ELOOP
	case unix.S_IFDIR:
	default:
		return -1, unix.ENOTDIR
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOTDIR) {
		// Swapped for a symlink or file since fstatat: say which.
		if serr := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, unix.ELOOP
		}
	}
	return fd, err
}
