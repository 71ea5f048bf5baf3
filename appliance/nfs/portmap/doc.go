// Package portmap is a portmapper, version 2 (RFC 1833 §3, program 100000),
// served through package rpc. nasd registers its own services with Set;
// remote callers can look them up (GETPORT, DUMP), and local ones (from a
// loopback address) can also SET and UNSET. CALLIT is not offered.
package portmap
