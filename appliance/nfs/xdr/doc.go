// Package xdr encodes and decodes External Data Representation (RFC 4506)
// in the sticky-error style: a Reader records the first error and every
// later read returns a zero value, so a decoder reads all its fields and
// checks Err once at the end.
//
// Both types are built for the NFS hot path: a Reader aliases the buffer it
// reads (Opaque and FixedOpaque return sub-slices, never copies) and a
// Writer appends into a caller-supplied buffer that is reused across
// requests. Neither allocates unless a Writer outgrows its buffer or
// String converts bytes to a Go string.
package xdr
