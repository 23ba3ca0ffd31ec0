#!/usr/bin/env bash
# Installs what is missing, builds kiln twice (plain, and with ASan+UBSan),
# and runs every test suite in both builds. Ends with one line
# "N passed, N failed, N skipped" and exits non-zero on any failure.
#   KILN_TEST_FILTER=name   run only tests whose executable name contains it
#   KILN_LONG_TESTS=1       also run the long tests (bzImage through its
#                           ring-0 decompressor: minutes on nested PVM)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
kiln_deps

# the Linux early-boot test needs Debian's cloud kernel; without it that
# test reports itself skipped
scripts/fetch-linux.sh tests/linux/cache >/dev/null 2>&1 || echo "note: could not fetch the Linux kernel; its test will be skipped"

build() {
	local dir=$1
	shift
	[ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null
	ninja -C "$dir" >/dev/null
}
build build
build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
python3 scripts/run-tests.py build build-asan
