#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds one libFuzzer target with clang (ASan + UBSan, any report fatal)
# and runs it for a bounded time.
#   scripts/fuzz.sh TARGET [SECONDS]   default 30 seconds
#   scripts/fuzz.sh list               the targets, one per line
#   scripts/fuzz.sh build TARGET       build only
#   KILN_FUZZ_DIR=dir                  where binaries, grown corpora and crash
#                                      files go (default build-fuzz)
#   KILN_FUZZ_JOBS=N                   libFuzzer workers (default 1)
# A target is built again only when a C file or header, or this script, is
# newer than its binary (so test.sh can build them all in parallel first).
# Seeds and the regression corpus (inputs that once crashed, named
# regress-*) live in tests/fuzz/corpus/TARGET/ and are only read; new
# inputs go to $KILN_FUZZ_DIR/corpus/TARGET/. Exits non-zero when the
# target crashes, hangs, leaks or trips a sanitizer, and prints the path of
# the input that did it; replay it with "$KILN_FUZZ_DIR/fuzz_TARGET FILE".
set -euo pipefail
cd "$(dirname "$0")/.."

common="common/util.c common/log.c common/crc32.c common/state.c"
memory="memory/guest_mem.c memory/bus.c memory/dirty.c"
# virtio-net serves the MMDS: the device targets take its stack and jansson
virtio="$(ls virtio/*.c | tr '\n' ' ') mmds/store.c mmds/token.c mmds/http.c mmds/frame.c mmds/ns.c mmds/tcp.c $(pkg-config --libs jansson)"
devfuzz="tests/fuzz/fz_dev.c $common $memory $virtio"

# target -> sources and libraries (the fuzz_TARGET.c file comes first)
sources() {
	case $1 in
	router) echo "api/router.c api/parse_*.c api/action.c api/config*.c mmds/store.c" \
		"common/util.c common/log.c $(pkg-config --libs jansson)" ;;
	virtqueue) echo "virtio/queue.c memory/guest_mem.c common/util.c common/log.c" ;;
	mmio | blk | net | vsock | rng | balloon) echo "$devfuzz -luring" ;;
	snapshot) echo "tests/fuzz/fz_snapshot_seeds.c daemon/snapshot.c daemon/snapshot_file.c" \
		"api/config*.c api/parse_balloon.c api/parse_cpu.c vcpu/*.c devices/*.c $common $memory" \
		"$virtio -luring" \
		"$(pkg-config --libs jansson)" ;;
	mmds_http | mmds_tcp) echo "mmds/*.c common/util.c common/log.c $(pkg-config --libs jansson)" ;;
	migration) echo "daemon/mig_wire.c memory/guest_mem.c memory/dirty.c common/util.c" \
		"common/log.c" ;;
	boot) echo "vcpu/boot*.c vcpu/mptable.c vcpu/acpi.c vcpu/aml.c memory/guest_mem.c common/util.c" \
		"common/log.c" ;;
	seccomp) echo "daemon/seccomp*.c common/util.c common/log.c $(pkg-config --libs jansson)" \
		"$(pkg-config --libs libseccomp)" ;;
	*) return 1 ;;
	esac
}
targets="router virtqueue mmio blk net vsock rng balloon snapshot boot migration mmds_http mmds_tcp seccomp"

# per-target libFuzzer options
options() {
	case $1 in
	router) echo "-max_len=65536 -dict=tests/fuzz/router.dict" ;;
	virtqueue) echo "-max_len=90000" ;;
	snapshot) echo "-max_len=32768" ;;
	boot | migration) echo "-max_len=65536" ;;
	seccomp) echo "-max_len=65536 -dict=tests/fuzz/seccomp.dict" ;;
	mmds_tcp) echo "-max_len=16384" ;;
	*) echo "-max_len=4096" ;;
	esac
}

usage() { echo "usage: $0 TARGET [SECONDS] | list | build TARGET   (targets: $targets)" >&2; exit 2; }

# the binary exists and nothing it may be built from is newer
up_to_date() { # BINARY
	[ -x "$1" ] || return 1
	[ -z "$(find scripts/fuzz.sh api common daemon devices memory mmds vcpu virtio tests/fuzz \
		\( -name '*.c' -o -name '*.h' -o -name fuzz.sh \) -newer "$1" -print -quit)" ]
}

build() { # TARGET
	local t=$1 src
	src=$(sources "$t") || usage
	up_to_date "$out/fuzz_$t" && return 0
	command -v clang >/dev/null || { echo "fuzz.sh: clang is not installed" >&2; exit 2; }
	mkdir -p "$out"
	# shellcheck disable=SC2086 # word splitting of the source list is wanted
	clang -std=gnu11 -D_GNU_SOURCE -DKILN_FUZZ -g -O1 -I. -fno-strict-aliasing \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		"tests/fuzz/fuzz_$t.c" $src -lpthread -o "$out/fuzz_$t"
}

out=${KILN_FUZZ_DIR:-build-fuzz}
case ${1:-} in
list) echo "$targets" | tr ' ' '\n'; exit 0 ;;
build) [ $# -eq 2 ] || usage; build "$2"; exit 0 ;;
'') usage ;;
esac
t=$1 secs=${2:-30}
case $secs in '' | *[!0-9]*) usage ;; esac
sources "$t" >/dev/null || usage
build "$t"

seeds=tests/fuzz/corpus/$t
mkdir -p "$out/corpus/$t" "$seeds"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
log="$out/fuzz_$t.log"
jobs=${KILN_FUZZ_JOBS:-1}
par=()
[ "$jobs" -gt 1 ] && par=(-fork="$jobs" -ignore_crashes=0)
# shellcheck disable=SC2046 # options are words
"$out/fuzz_$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
	$(options "$t") "${par[@]}" -artifact_prefix="$out/$t-" -print_final_stats=1 \
	"$out/corpus/$t" "$seeds" 2>"$log" || {
	rc=$?
	tail -n 80 "$log" >&2
	echo "fuzz.sh: target $t failed (exit $rc); log $log" >&2
	ls "$out/$t"-* 2>/dev/null | sed 's/^/fuzz.sh: reproducer: /' >&2
	exit 1
}
grep -E '^stat::number_of_executed_units|^Done' "$log" || true
echo "fuzz.sh: target $t: no crash in ${secs}s"
