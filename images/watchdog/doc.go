// Package watchdog keeps a hardware watchdog fed while the appliance is
// healthy, so a hung nasd, a hung init or a hung kernel resets the box
// (and, on a slot on trial after an update, the loader's boot counting
// takes it from there).
//
// The Linux watchdog API (Documentation/watchdog/watchdog-api.rst): once
// /dev/watchdog is open the timer runs; WDIOC_SETTIMEOUT sets its
// timeout, WDIOC_KEEPALIVE restarts it, and closing the device after
// writing the magic character 'V' stops it (on a driver with
// WDIOF_MAGICCLOSE; without it a close stops it anyway unless the kernel
// has nowayout). A close without 'V' leaves it running: a watchdog
// holder that dies resets the box.
//
// It runs in the slot's init (images/userland/init), not in nasd: the
// init is PID 1, outlives nasd (it restarts a nasd that exits, which
// must not reset the box by itself), already probes nasd's health
// (`nasctl status --json`: nasd answers its API, reads its store, and
// every service reports healthy) and owns the clean shutdown, where it
// writes the magic close after nasd stopped and the stores are
// unmounted, just before the power-off.
//
// Policy is the pure part: it pets while the init lives until nasd has
// first served (a boot; a slot on trial that never serves reboots by
// its own deadline), then only while the last passing health probe is
// at most Grace old, and always once a clean shutdown began. Runner is
// the loop: on each tick it starts a health probe (one at a time, with
// a deadline) and pets when the Policy says so. A hung nasd is thus
// reset Grace + Timeout after its last good probe at the latest; a hung
// init or kernel Timeout after the last pet.
//
// Device is the edge: Open (Linux only) opens the device, sets the
// timeout and reads back the one the driver took; Keepalive pets, Close
// writes 'V' and closes.
package watchdog
