#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the API router/parser fuzz target with clang (libFuzzer + ASan +
# UBSan) and runs it for a bounded time over tests/fuzz/corpus/.
#   scripts/fuzz.sh [SECONDS]        default 30
#   KILN_FUZZ_DIR=dir                where the binary, the grown corpus and any
#                                    crash files go (default build-fuzz)
# Exits non-zero when the target crashes, leaks or trips a sanitizer; the
# input that did it is left as $KILN_FUZZ_DIR/crash-* (replay it with
# "$KILN_FUZZ_DIR/fuzz_router FILE").
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-30}
out=${KILN_FUZZ_DIR:-build-fuzz}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
command -v clang >/dev/null || { echo "fuzz.sh: clang is not installed" >&2; exit 2; }

mkdir -p "$out/corpus"
# the parsers and everything they call; no server, no VMM
clang -std=gnu11 -D_GNU_SOURCE -g -O1 -I. \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	tests/fuzz/fuzz_router.c api/router.c api/parse_*.c api/action.c api/config*.c \
	common/util.c common/log.c \
	$(pkg-config --cflags --libs jansson) -lpthread -o "$out/fuzz_router"

# new inputs go to $out/corpus; the committed seeds are read, never written
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$out/fuzz_router" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-max_len=65536 -dict=tests/fuzz/router.dict -artifact_prefix="$out/" \
	-print_final_stats=1 "$out/corpus" tests/fuzz/corpus 2>"$out/fuzz.log" || {
	rc=$?
	tail -n 60 "$out/fuzz.log" >&2
	echo "fuzz.sh: the fuzz target failed (exit $rc); see $out/fuzz.log and $out/crash-*" >&2
	exit 1
}
grep -E '^stat::number_of_executed_units|^Done' "$out/fuzz.log" || true
echo "fuzz.sh: no crash in ${secs}s"
