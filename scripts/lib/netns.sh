# shellcheck shell=bash
# Shared helpers for the network-namespace lab and benchmarks.
#
# Source this file from a bash script running as root. Everything made
# through these helpers is registered on a cleanup stack; call
# `nn_cleanup` from an EXIT trap (nn_init_cleanup does that) and it is
# undone in reverse order: processes in our namespaces, namespaces,
# mounts, loop devices, temp dirs. Only objects this script created are
# touched: processes are found through the namespaces we made, loop
# devices through the image files we made.

nn_cleanup_stack=()

nn_log() { printf '%s\n' "$*" >&2; }
nn_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# nn_defer CMD...: run CMD (a string, eval'd) at cleanup, last in first out.
nn_defer() { nn_cleanup_stack+=("$*"); }

nn_cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	set +e
	for ((i = ${#nn_cleanup_stack[@]} - 1; i >= 0; i--)); do
		eval "${nn_cleanup_stack[i]}"
	done
	nn_cleanup_stack=()
	return "$rc"
}

# nn_init_cleanup: install the traps. INT/TERM exit, which runs the EXIT trap.
nn_init_cleanup() {
	trap nn_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

nn_require_root() {
	[ "$(id -u)" = 0 ] || nn_die "must run as root (network namespaces, loop mounts)"
}

# nn_require_tools TOOL...: fail naming every missing tool.
nn_require_tools() {
	local t missing=()
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	[ ${#missing[@]} -eq 0 ] || nn_die "missing tools: ${missing[*]}"
}

# nn_kill_ns NS [GRACE_SECONDS]: SIGTERM every process in namespace NS,
# wait up to GRACE seconds for them to exit, then SIGKILL the rest.
nn_kill_ns() {
	local ns=$1 grace=${2:-5} pids deadline
	pids=$(ip netns pids "$ns" 2>/dev/null) || return 0
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null
	deadline=$((SECONDS + grace))
	while [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && [ $SECONDS -lt $deadline ]; do
		sleep 0.1
	done
	pids=$(ip netns pids "$ns" 2>/dev/null)
	if [ -n "$pids" ]; then
		nn_log "cleanup: killing leftover processes in $ns: $pids"
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null
		deadline=$((SECONDS + 5))
		while [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && [ $SECONDS -lt $deadline ]; do
			sleep 0.1
		done
	fi
}

# nn_kill_pid PID [GRACE_SECONDS]: SIGTERM one process we started, wait for
# it to exit, then SIGKILL it.
nn_kill_pid() {
	local pid=$1 grace=${2:-5} deadline
	kill -TERM "$pid" 2>/dev/null || return 0
	deadline=$((SECONDS + grace))
	while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# nn_track_pid PID: stop PID at cleanup, before its namespace is emptied,
# so a process still on its way into a namespace cannot slip past.
nn_track_pid() { nn_defer "nn_kill_pid '$1'"; }

# nn_add NS: create network namespace NS with loopback up. At cleanup its
# processes are stopped and it is deleted.
nn_add() {
	local ns=$1
	ip netns add "$ns" || nn_die "ip netns add $ns failed"
	nn_defer "ip netns del '$ns' 2>/dev/null"
	nn_defer "nn_kill_ns '$ns'"
	ip -n "$ns" link set lo up
}

# nn_link NS1 IF1 CIDR1 NS2 IF2 CIDR2 [MTU]: a veth pair straight between two
# of our namespaces (no end ever exists in the caller's namespace). Deleting
# either namespace removes the pair.
nn_link() {
	local ns1=$1 if1=$2 a1=$3 ns2=$4 if2=$5 a2=$6 mtu=${7:-1500}
	ip -n "$ns1" link add "$if1" mtu "$mtu" type veth peer name "$if2" netns "$ns2" mtu "$mtu" ||
		nn_die "veth $ns1/$if1 <-> $ns2/$if2 failed"
	ip -n "$ns1" addr add "$a1" dev "$if1"
	ip -n "$ns2" addr add "$a2" dev "$if2"
	ip -n "$ns1" link set "$if1" up
	ip -n "$ns2" link set "$if2" up
}

# nn_loop_volume IMG MNT SIZE FSTYPE: make an image of SIZE bytes, mkfs it
# and loop-mount it on MNT. The image is preallocated (fallocate; sparse if
# the host filesystem cannot) and mkfs does not discard, so writes into the
# volume do not pay for block allocation in the host filesystem. ext4 is
# made without lazy init, so no background zeroing competes with the user.
# At cleanup it is unmounted and its loop devices detached (found by image
# path, so only ours).
nn_loop_volume() {
	local img=$1 mnt=$2 size=$3 fs=$4 dev
	if ! fallocate -l "$size" "$img" 2>/dev/null; then
		rm -f "$img"
		truncate -s "$size" "$img" || nn_die "create image $img"
	fi
	case $fs in
	ext4) mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$img" ;;
	btrfs) mkfs.btrfs -q -f -K "$img" >/dev/null ;;
	xfs) mkfs.xfs -q -f -K "$img" ;;
	*) nn_die "unsupported filesystem $fs (ext4, btrfs, xfs)" ;;
	esac || nn_die "mkfs.$fs $img failed"
	mkdir -p "$mnt"
	dev=$(losetup --find --show "$img") || nn_die "losetup $img failed"
	nn_defer "nn_detach_loops '$img'"
	mount -t "$fs" "$dev" "$mnt" || nn_die "mount $dev ($img) on $mnt failed"
	nn_defer "nn_umount '$mnt'"
}

nn_umount() {
	local mnt=$1 i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		mountpoint -q "$mnt" || return 0
		umount "$mnt" 2>/dev/null && return 0
		sleep 0.5
	done
	nn_log "cleanup: $mnt still busy, detaching lazily"
	umount -l "$mnt"
}

nn_detach_loops() {
	local img=$1 dev
	for dev in $(losetup -j "$img" -O NAME -n 2>/dev/null); do
		losetup -d "$dev" || nn_log "cleanup: losetup -d $dev failed"
	done
}

# nn_wait DESC SECONDS CMD...: run CMD until it succeeds; after SECONDS,
# log that DESC timed out (with CMD's last output) and return 1.
nn_wait() {
	local desc=$1 secs=$2 deadline out
	shift 2
	deadline=$((SECONDS + secs))
	until out=$("$@" 2>&1); do
		if [ $SECONDS -ge $deadline ]; then
			nn_log "timed out after ${secs}s waiting for $desc; last attempt said: $out"
			return 1
		fi
		sleep 0.2
	done
}
