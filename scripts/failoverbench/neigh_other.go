//go:build !linux

package main

import "errors"

func neighbourMAC(string) (string, error) {
	return "", errors.New("neighbour entries: Linux only")
}
