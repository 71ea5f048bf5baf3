//go:build !linux

package userland

import (
	"context"
	"errors"

	"ftnas/images/rootfs"
)

var errUnsupported = errors.New("userland: needs Linux")

// FindTool is Linux-only.
func FindTool() (string, error) { return "", errUnsupported }

// HostRelease is Linux-only.
func HostRelease(s Spec) string { return "" }

// Bootstrap is Linux-only.
func Bootstrap(ctx context.Context, o Options) (Tree, error) { return Tree{}, errUnsupported }

// SlotImage is Linux-only.
func SlotImage(ctx context.Context, t Tree, files []rootfs.File, out string, level int) (Image, error) {
	return Image{}, errUnsupported
}

// BuildImage is Linux-only.
func BuildImage(ctx context.Context, o Options, binDir, out string, level int, extra ...rootfs.File) (Tree, Image, error) {
	return Tree{}, Image{}, errUnsupported
}
