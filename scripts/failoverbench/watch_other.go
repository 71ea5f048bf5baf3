//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
)

func watch(context.Context, string, []member, io.Writer) error {
	return errors.New("watch: network namespaces need Linux")
}
