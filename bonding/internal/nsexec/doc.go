// Package nsexec runs code inside a network namespace: the bonding
// packages' one place that switches a thread's namespace. Linux only.
package nsexec
