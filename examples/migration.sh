#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# migration.sh: live migration between two "hosts" on one machine. Two
# network namespaces joined by a veth pair (10.78.0.1 and 10.78.0.2) stand
# for the hosts; a kiln in the first boots a guest, the guest moves to a
# kiln in the second over TCP while it runs, then back to a new kiln in the
# first. Each move prints its downtime and totals. Needs root (ip netns).
#   examples/migration.sh [KERNEL] [BOOT_ARGS]
# KERNEL defaults to the memck test guest (build it with `ninja -C build`),
# which rewrites and checks its memory and numbers its reports: the reports
# go on without a gap across both moves. KILN_BIN and KILN_GUEST_DIR name
# another kiln and guest folder (the tests pass their build's).
set -euo pipefail
cd "$(dirname "$0")/.."

kernel=${1:-${KILN_GUEST_DIR:-$PWD/build/tests/guests}/memck.elf}
args=${2:-console=ttyS0 reboot=k panic=1 acpi=off memck.mib=32 memck.report_ms=200}
kiln=${KILN_BIN:-$PWD/build/daemon/kiln}
dir=$(mktemp -d /tmp/kiln-migration-XXXXXX)
a=kmig_ex_a b=kmig_ex_b port=4700
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del $a 2>/dev/null || true
	ip netns del $b 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

# 1. two hosts: namespaces a and b, a veth pair between them
ip netns add $a
ip netns add $b
ip link add kmig_ex0 type veth peer name kmig_ex1
ip link set kmig_ex0 netns $a
ip link set kmig_ex1 netns $b
ip -n $a addr add 10.78.0.1/24 dev kmig_ex0
ip -n $b addr add 10.78.0.2/24 dev kmig_ex1
for ns in $a $b; do
	ip -n $ns link set lo up
done
ip -n $a link set kmig_ex0 up
ip -n $b link set kmig_ex1 up

# start_kiln NS NAME: a kiln in namespace NS with its API on $dir/NAME.sock
declare -A kpid
start_kiln() {
	ip netns exec "$1" "$kiln" --api-sock "$dir/$2.sock" --id "$2" \
		--metrics-path "$dir/$2.metrics" >"$dir/$2.out" 2>&1 &
	pids+=($!)
	kpid[$2]=$! # ip netns exec becomes kiln

	while [ ! -S "$dir/$2.sock" ]; do sleep 0.01; done
}
call() { curl -sS --unix-socket "$dir/$1.sock" -X "$2" "http://localhost$3" \
	-H 'Content-Type: application/json' ${4:+-d "$4"}; }

# move FROM TO TO_NS TO_ADDR: TO listens, FROM sends, wait for FROM to exit
move() {
	start_kiln "$3" "$2"
	call "$2" PUT /migration/receive "{\"listen\": \"tcp:$4:$port\"}"
	call "$1" PUT /migration/send "{\"destination\": \"tcp:$4:$port\", \"max_downtime_ms\": 50}"
	# the source exits 0 once the target runs the guest; give it two minutes
	for _ in $(seq 1200); do call "$1" GET / >/dev/null 2>&1 || break; sleep 0.1; done
	if ! grep -q 'complete: downtime' "$dir/$1.out"; then
		echo "$1 -> $2 failed: $(call "$1" GET /migration 2>&1)"
		tail -n 5 "$dir/$1.out" "$dir/$2.out"
		exit 1
	fi
	echo "$1 -> $2: $(grep -o 'migration to .*' "$dir/$1.out")"
	echo "$2 now: $(call "$2" GET /migration)"
	port=$((port + 1))
}

# 2. the guest boots on host a
start_kiln $a one
call one PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"boot_args\": \"$args\"}"
call one PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 128}'
call one PUT /actions '{"action_type": "InstanceStart"}'
sleep 3

# 3. to host b, and back to a new kiln on host a
move one two $b 10.78.0.2
sleep 3
move two three $a 10.78.0.1
# the guest reports on the last kiln too (up to 60 s: a slow emulated CPU)
for _ in $(seq 600); do
	grep -aq 'memck: report' "$dir/three.out" && break
	sleep 0.1
done
sleep 1
echo "the guest's last reports on each kiln:"
for k in one two three; do
	echo "  $k: $(grep -a 'memck: report' "$dir/$k.out" | tail -n 1 | tr -d '\r')"
done
# what a kiln's threads do: state, kernel wait channel, and CPU ticks in one
# second in user space, in the kernel and in the guest (a halted vCPU, a
# running guest, and a vCPU looping outside the guest differ); field 43 of
# /proc's stat is the guest's time, counted in user time (field 14) too
ticks() { sed 's/.*) //' "$1/stat" 2>/dev/null | awk '{print $12, $13, $41}'; }
threads() {
	local t before=()
	for t in /proc/"$1"/task/*; do before+=("$(ticks "$t")"); done
	sleep 1
	local i=0 name u0 s0 g0 u1 s1 g1
	for t in /proc/"$1"/task/*; do
		read -r name < "$t/comm"
		read -r u0 s0 g0 <<< "${before[i]:-0 0 0}"
		read -r u1 s1 g1 <<< "$(ticks "$t")"
		echo "    $name: $(sed 's/.*) //' "$t/stat" | awk '{print $1}') wchan $(cat "$t/wchan" 2>/dev/null);" \
			"ticks in the last second: user $((u1 - u0)), system $((s1 - s0)), guest $((g1 - g0))"
		i=$((i + 1))
	done
}
if ! grep -aq 'memck: report' "$dir/three.out"; then
	echo "no report on three after 60 s; its output ends with:"
	tail -n 12 "$dir/three.out"
	curl -s --unix-socket "$dir/three.sock" http://localhost/ && echo
	echo "three's threads:"
	call three PUT /actions '{"action_type": "FlushMetrics"}'
	threads "${kpid[three]}"
	call three PUT /actions '{"action_type": "FlushMetrics"}'
	echo "three's vCPU exits in that second: $(tail -n 1 "$dir/three.metrics" |
		python3 -c 'import json, sys; print(json.load(sys.stdin).get("vcpu"))')"
fi
if grep -aq MISMATCH "$dir"/one.out "$dir"/two.out "$dir"/three.out; then
	echo "memck found memory that did not survive a move"
	exit 1
fi
