// Package kernelbond is the bond's kernel datapath: the Linux bonding
// driver, configured through netlink (RTM_NEWLINK with IFLA_LINKINFO kind
// "bond": balance-rr for load-balance, active-backup for failover, miimon;
// IFLA_MASTER to enslave; IFLA_BOND_ACTIVE_SLAVE to follow the controller's
// choice in failover mode). It implements bonding.Datapath.
//
// The host kernel this project is built on has no bonding module, so the
// netlink requests are unit-tested byte for byte, the live test skips when
// /sys/class/net/bonding_masters is absent, and TestQEMUBond runs the
// datapath under bonding.Agent inside a qemu guest with the Debian kernel
// (internal/guesttest): balance-rr and active-backup over two virtio NICs,
// sysfs checked against the controller, members cut with QMP set_link.
//
// The driver enslaves only links that are down, so Enslave sets the NIC
// down and the driver sets it up again: that carrier loss is hidden from
// the controller (bounce.go) unless the carrier is still missing
// bounceGrace later, so a joining member is neither counted as a fault
// nor held out of the bond for the controller's up-delay.
//
// The driver, loaded without max_bonds=0, makes an empty bond0 of its own;
// CreateBond then fails (EEXIST) for that name.
//
// What the driver does itself: carrier monitoring (miimon) and, in
// load-balance mode, taking a member without carrier out of the rotation;
// gratuitous ARP after a failover. What the controller adds: the member
// set, the primary's identity, hysteresis and, in failover mode, which
// member is active. ARP probing is not offered (SendProbe fails): run the
// controller without a ProbeTarget on this datapath, or use the driver's
// arp_ip_target (not wired yet). A member the controller's detector fails
// is not yet forced out of a balance-rr rotation.
package kernelbond
