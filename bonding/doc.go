// Package bonding is MNCB, ftnas's network fault tolerance: several NICs act
// as one bond that carries the node's IP, MAC, netmask and MTU.
//
// The package holds the pure controller and the loop that drives it:
//
//   - Controller is the scheduler, the MII fault detector and the switcher in
//     one pure state machine: Step(Event) []Action, with time entering only
//     as Tick events. No goroutines, no sockets, no clock.
//   - The scheduler admits a NIC (AddNIC) only if it exists, is up, has
//     carrier and, when a probe target is configured, answers an ARP probe
//     through that NIC within Config.AddTimeout: only an ARP reply from the
//     target to the bond's address admits it (ProbeAnswered events), other
//     frames (IPv6 chatter of a neighbour that cannot reach the target) do
//     not. The first NIC admitted is the primary: the bond takes its IP
//     addresses (with their netmasks), MAC and MTU, and later NICs are made
//     to match. Removing the last NIC returns the addresses to that NIC as a
//     plain, unbonded interface.
//   - The MII fault detector takes a member out at once when its carrier
//     drops (Carrier events) and, with a probe target, when no frame has
//     arrived through it for Config.Misses detection intervals (Received
//     events, any frame; the datapath sends an ARP probe through every
//     member every interval, see Silent).
//   - The switcher puts a failed member back only after it has been healthy
//     for Config.UpDelay without a break (hysteresis, see Settled). In
//     load-balance mode every healthy member carries traffic round-robin; in
//     failover mode one does (the primary when healthy, else the first
//     healthy member in the order they were added), and every move is
//     announced with gratuitous ARP (Announce).
//
// Agent runs a Controller against a Datapath (the adapter that executes
// actions: bonding/userland, a TAP device plus AF_PACKET sockets; or
// bonding/kernelbond, the Linux bonding driver through netlink), feeding it
// ticks, carrier changes and receive activity, and serves add, remove, mode
// and status requests.
package bonding
