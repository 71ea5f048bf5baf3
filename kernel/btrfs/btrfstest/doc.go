// Package btrfstest makes loop-mounted btrfs volumes for tests.
package btrfstest
