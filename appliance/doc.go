// Package appliance is ftnas's composition root: it opens the state store and
// the volume, and runs the services of a single node — the in-process NFSv3
// server with MOUNT and a portmapper, Samba's smbd under supervision, the
// local API that nasctl talks to, and Prometheus metrics — until its context
// ends, then stops every one of them (smbd included) before it returns.
//
// Everything that touches the operating system beyond files (system accounts,
// smbd) is done here or in the packages it wires; the packages below it hold
// the logic.
package appliance
