// Package benchcli is what the benchmark helper commands under scripts/
// (failoverbench, replbench, chaos) share: a main that runs one
// operation with a signal-cancelled context and maps errors to exit
// codes, strict flag parsing, the JSON result line, and silencing
// go-nfs-client's logger (its dial failures are expected while a
// failover is measured).
package benchcli
