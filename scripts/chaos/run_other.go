//go:build !linux

package main

import (
	"context"
	"errors"
	"flag"
	"io"
)

type runOptions struct{}

func (o *runOptions) flags(*flag.FlagSet) {}

func runTrials(context.Context, runOptions, io.Writer) error {
	return errors.New("run: the lab needs Linux")
}
