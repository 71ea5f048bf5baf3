// Package mount is the MOUNT protocol, version 3 (RFC 1813 Appendix I,
// program 100005), served through package rpc. It resolves a client's
// export path through an Exports implementation (which owns access
// control and file handles), keeps the list of mounts that DUMP reports,
// and lists exports for EXPORT. Version 1 is answered for NULL, DUMP,
// UMNT, UMNTALL and EXPORT, whose encodings are the same as version 3's;
// its MNT (32-byte NFSv2 handles) is PROC_UNAVAIL.
package mount
