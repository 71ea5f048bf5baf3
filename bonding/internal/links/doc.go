// Package links holds the netlink chores both bond datapaths share: a
// NIC's facts, making a NIC match the bond, moving addresses and routes.
// Linux only.
package links
