#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# sandbox-pool.sh: warm sandboxes from one snapshot, as serverless platforms
# keep them. One snapshot of a booted guest is taken once; then a pool of N
# kiln processes, each with that snapshot loaded but paused (memory mapped
# copy-on-write from the one memory file, so they share it), waits; every
# line read on stdin resumes one of them, prints where its API is, and a new
# one is loaded to take its place.
#
#   examples/sandbox-pool.sh prepare        boot the guest, snapshot it into $POOL_DIR
#   examples/sandbox-pool.sh serve N        keep N restored, paused kilns; one per stdin line
#   examples/sandbox-pool.sh clean          kill the pool's kilns (handed out too), remove $POOL_DIR
#
# `serve` prints, per line read, "<api socket> <pid>" of a running sandbox;
# it is the caller's from then on (PATCH /vm, GET /, kill <pid> when done).
# At the end of stdin the idle kilns are killed; the handed-out ones keep
# running.
#
# Environment:
#   KILN       the kiln binary (default: build/daemon/kiln, else kiln in PATH)
#   GUEST      the guest to snapshot (default: build/tests/guests/memck.elf,
#              a memory checker that numbers its reports, so each sandbox
#              visibly goes on from the snapshot on its own)
#   BOOT_ARGS  its command line (default: "memck.mib=16 memck.report_ms=1000")
#   MEM_MIB    guest RAM (default 64)
#   POOL_DIR   snapshot, sockets and logs (default /tmp/kiln-pool)
#
# Example:
#   examples/sandbox-pool.sh prepare
#   (echo; sleep 1; echo) | examples/sandbox-pool.sh serve 3
#   -> /tmp/kiln-pool/vm_1.sock 12345    (each line: a running sandbox)
#
# Needs bash, curl (--unix-socket) and /dev/kvm. For sandboxes with a
# network, give each its own tap at load time with "network_overrides"
# (see load_body below); the snapshot's own tap is then never opened twice.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
KILN=${KILN:-$here/build/daemon/kiln}
[ -x "$KILN" ] || KILN=$(command -v kiln || true)
GUEST=${GUEST:-$here/build/tests/guests/memck.elf}
BOOT_ARGS=${BOOT_ARGS:-memck.mib=16 memck.report_ms=1000}
MEM_MIB=${MEM_MIB:-64}
POOL_DIR=${POOL_DIR:-/tmp/kiln-pool}

die() {
	echo "sandbox-pool: $*" >&2
	exit 1
}

# api SOCKET METHOD PATH [BODY]: one request; fails (with kiln's fault_message) unless 2xx
api() {
	local out code
	out=$(curl -sS --unix-socket "$1" -X "$2" "http://localhost$3" \
		${4:+-H 'Content-Type: application/json' -d "$4"} -w '\n%{http_code}') ||
		die "$2 $3: no answer on $1"
	code=${out##*$'\n'}
	[ "${code:0:1}" = 2 ] || die "$2 $3 on $1: $code ${out%$'\n'*}"
}

# start_kiln NAME: a kiln on $POOL_DIR/NAME.sock, its output in NAME.log; sets $pid
start_kiln() {
	local sock=$POOL_DIR/$1.sock
	rm -f "$sock"
	"$KILN" --api-sock "$sock" --id "$1" >"$POOL_DIR/$1.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$POOL_DIR/$1.pid"
	for _ in $(seq 200); do
		[ -S "$sock" ] && return 0
		kill -0 "$pid" 2>/dev/null || die "kiln $1 exited: $(tail -3 "$POOL_DIR/$1.log")"
		sleep 0.01
	done
	die "kiln $1 never opened $sock"
}

prepare() {
	[ -x "$KILN" ] || die "no kiln binary (set KILN)"
	[ -r "$GUEST" ] || die "no guest $GUEST (build the tests, or set GUEST)"
	mkdir -p "$POOL_DIR"
	start_kiln template
	local sock=$POOL_DIR/template.sock
	api "$sock" PUT /boot-source \
		"{\"kernel_image_path\": \"$GUEST\", \"boot_args\": \"$BOOT_ARGS\"}"
	api "$sock" PUT /machine-config "{\"vcpu_count\": 1, \"mem_size_mib\": $MEM_MIB}"
	api "$sock" PUT /actions '{"action_type": "InstanceStart"}'
	sleep 1.5 # let the guest get going: the snapshot is of a warm sandbox
	api "$sock" PATCH /vm '{"state": "Paused"}'
	api "$sock" PUT /snapshot/create "{\"snapshot_type\": \"Full\", \
\"snapshot_path\": \"$POOL_DIR/pool.snap\", \"mem_file_path\": \"$POOL_DIR/pool.mem\"}"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	rm -f "$sock" "$POOL_DIR/template.pid"
	echo "sandbox-pool: snapshot in $POOL_DIR/pool.snap, memory in $POOL_DIR/pool.mem" >&2
}

load_body() {
	# add e.g. , "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap$1"}]
	echo "{\"snapshot_path\": \"$POOL_DIR/pool.snap\", \"mem_backend\": \
{\"backend_type\": \"File\", \"backend_path\": \"$POOL_DIR/pool.mem\"}, \"resume_vm\": false}"
}

ready=() # "socket pid" of the paused kilns, oldest first
seq_no=0

# one more restored, paused kiln at the end of the pool
refill() {
	seq_no=$((seq_no + 1))
	start_kiln "vm_$seq_no"
	api "$POOL_DIR/vm_$seq_no.sock" PUT /snapshot/load "$(load_body "$seq_no")"
	ready+=("$POOL_DIR/vm_$seq_no.sock $pid")
}

idle_cleanup() {
	local e
	for e in "${ready[@]+"${ready[@]}"}"; do
		kill "${e#* }" 2>/dev/null || true
		rm -f "${e% *}" "${e%.sock *}.pid"
	done
}

serve() {
	local n=$1 sock
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "serve: N must be a positive number, not '$n'"
	[ -r "$POOL_DIR/pool.snap" ] || die "no snapshot in $POOL_DIR: run '$0 prepare' first"
	trap idle_cleanup EXIT
	for _ in $(seq "$n"); do
		refill
	done
	echo "sandbox-pool: $n sandboxes ready; one per line on stdin" >&2
	while IFS= read -r _; do
		sock=${ready[0]% *}
		api "$sock" PATCH /vm '{"state": "Resumed"}'
		echo "${ready[0]}"
		ready=("${ready[@]:1}")
		refill
	done
}

clean() {
	local f p
	for f in "$POOL_DIR"/*.pid; do
		[ -e "$f" ] || continue
		p=$(cat "$f")
		# still the kiln this pool started (pids get reused)?
		if tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" |
			grep -q -- "--api-sock ${f%.pid}.sock "; then
			kill "$p"
		fi
	done
	rm -rf "$POOL_DIR"
}

case "${1:-}" in
prepare) prepare ;;
serve) serve "${2:-}" ;;
clean) clean ;;
*)
	sed -n '3,36p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
