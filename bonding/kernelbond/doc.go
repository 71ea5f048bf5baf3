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
// sysfs checked against the controller, members cut with QMP set_link, and
// a balance-rr bond with ARP probes whose member's path dies (tc drops in
// the guest) while its carrier stays up.
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
// set, the primary's identity, hysteresis, its own fault detector and, in
// failover mode, which member is active.
//
// The controller's detector (the driver's arp_ip_target is not used): every
// prepared NIC and member gets an AF_PACKET socket bound to it for
// EtherType ARP with a classic BPF filter that passes ARP replies only
// (probe.go, probe_linux.go), opened by its first SendProbe. The probe goes
// out of that NIC alone. A slave speaks for the bond (its MAC, which is the
// bond's, and the bond's address); a NIC out of the bond (being checked,
// or forced out) sends an RFC 5227 probe from its own MAC with sender
// 0.0.0.0, so the target learns no mapping for the bond's address and
// answers to the NIC itself. ProbeAnswers reports a NIC when an ARP reply
// from the target to exactly that sender (IP and MAC) came in through it.
// A protocol-specific socket sees a slave's frames after tc ingress and
// after the bond's rx_handler (the kernel still hands them to the taps of
// the device they came in on), unlike an ETH_P_ALL tap. Activity reports
// nothing: only a member's own answered probes keep it alive.
//
// Forcing a member out (members.go, a pure plan per SetActive): in
// load-balance mode the members the controller leaves out of the rotation
// are released from the bond (IFLA_MASTER 0; the driver closes them, the
// datapath sets them up again and keeps probing them) and enslaved again
// when the controller lists them; the bond keeps its MAC and addresses.
// When the controller lists no member nothing moves: a bond without
// slaves takes a random MAC. In failover mode the active slave is the
// controller's choice and every member stays (or becomes again) a slave.
// Both carrier bounces, releasing and re-enslaving, are hidden like the
// enslave bounce.
//
// Limitations: in load-balance mode every slave has the bond's MAC, so
// through a hub or a flooding switch one slave's answers also reach the
// others (they count for them too), and through a static LAG the switch
// answers through whichever port it hashes to, so a member the switch
// never answers through is taken out; the probe target is asked for from
// the backups too in failover mode (with the bond's MAC, as the userland
// datapath does).
package kernelbond
