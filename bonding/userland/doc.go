// Package userland is the bond's userland datapath, for kernels without the
// bonding driver (like this project's build hosts): a TAP device is the
// bond interface the host stack uses, carrying the bond's MAC, addresses
// and MTU, and every member NIC gets an AF_PACKET socket (mdlayher/packet).
//
// Transmit: one goroutine reads frames from the TAP device and sends them
// over the active members, round-robin frame by frame in load-balance mode
// (the controller's SetActive lists one member in failover mode).
// Receive: one goroutine per member hands the frames that arrive through it
// to the TAP device and answers ARP requests for the bond's addresses on
// the member they came in on, so every member's probes are answered through
// that member and the far side's ARP monitor sees each path.
// It also notes an ARP reply from a probe's target to the prober arriving
// through a NIC (ProbeAnswers): only that admits a NIC being checked.
//
// Speed: the TAP device and the sockets both carry a virtio net header
// (IFF_VNET_HDR, PACKET_VNET_HDR) with checksum and TCP segmentation offload
// switched on (TUNSETOFFLOAD), so the host stack hands over whole 64 KiB
// TSO segments with partial checksums, the kernel segments them (or passes
// them whole over veth), and frames cross between TAP and sockets unparsed
// and unchanged. Members receive with recvmmsg and send with sendmmsg (mdlayher/packet has
// no batch API, so the calls go through its RawConn on the runtime poller),
// up to Options.Batch frames per call; the TAP side reads until EAGAIN and
// writes one frame per write(2), which is what a TAP takes. Buffers are
// allocated once per port; the data path does not allocate per frame and
// copies each frame once in and once out of the kernel.
//
// Members are taken from the host stack while enslaved with a two-
// instruction tcx ingress BPF program that drops everything: packet sockets
// see frames before tcx ingress, so the bond still gets them, but the host
// stack never answers on a member directly. The BPF link goes away with the
// process.
//
// Carrier: netlink link notifications plus a 10 ms poll of each member's
// ETHTOOL_GLINK (netlink carrier notifications can lag up to a second: the
// kernel's linkwatch batches non-urgent events).
//
// Every socket, TAP device and BPF link is created inside the datapath's
// network namespace on a dedicated, locked OS thread (nsexec.Do).
//
// Limitations: IPv4 only (ARP probing, address moving); a member receives
// the frames of the far end's rotation, so through a plain switch or bridge
// (one MAC on several ports) load-balance mode only aggregates toward peers
// that bond too (a static LAG). IPv6 link-local traffic the host stack may
// send from a member directly is not suppressed.
package userland
