#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the split-virtqueue fuzz target (tests/fuzz/fuzz_virtqueue.c) with
# clang (libFuzzer + ASan + UBSan) and runs it for a bounded time over
# tests/fuzz/corpus_virtqueue/.
#   scripts/fuzz-virtqueue.sh [SECONDS]   default 30
#   KILN_FUZZ_DIR=dir                     where the binary, the grown corpus and
#                                         any crash files go (default build-fuzz)
# Exits non-zero when the target crashes, leaks or trips a sanitizer; the
# input that did it is left as $KILN_FUZZ_DIR/virtqueue-crash-* (replay it
# with "$KILN_FUZZ_DIR/fuzz_virtqueue FILE").
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-30}
out=${KILN_FUZZ_DIR:-build-fuzz}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
command -v clang >/dev/null || { echo "fuzz-virtqueue.sh: clang is not installed" >&2; exit 2; }

mkdir -p "$out/corpus_virtqueue"
# the queue code and the guest-memory helper it calls; no threads, no KVM
clang -std=gnu11 -D_GNU_SOURCE -g -O1 -I. \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	tests/fuzz/fuzz_virtqueue.c virtio/queue.c memory/guest_mem.c \
	common/util.c common/log.c -lpthread -o "$out/fuzz_virtqueue"

# new inputs go to $out/corpus_virtqueue; the committed seeds are only read
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
log="$out/fuzz_virtqueue.log"
"$out/fuzz_virtqueue" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-max_len=90000 -artifact_prefix="$out/virtqueue-" -print_final_stats=1 \
	"$out/corpus_virtqueue" tests/fuzz/corpus_virtqueue 2>"$log" || {
	rc=$?
	tail -n 60 "$log" >&2
	echo "fuzz-virtqueue.sh: the fuzz target failed (exit $rc); see $log and $out/virtqueue-crash-*" >&2
	exit 1
}
grep -E '^stat::number_of_executed_units|^Done' "$log" || true
echo "fuzz-virtqueue.sh: no crash in ${secs}s"
