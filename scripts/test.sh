#!/usr/bin/env bash
# Installs what is missing, builds kiln twice (plain, and with ASan+UBSan),
# runs every test suite in both builds, validates the API traffic of the
# integration tests against openapi.yaml, runs the fuzz targets for a bounded
# time and checks the formatting. Ends with one line
# "N passed, N failed, N skipped" summing everything, and exits non-zero on
# any failure.
#   KILN_TEST_FILTER=name   run only test executables whose name contains it
#   KILN_FUZZ_SECONDS=N     time per fuzz target (default 8)
#   KILN_TESTBED=host       run the tests that need /dev/kvm directly on this
#                           host (its /dev/kvm must be an ordinary KVM);
#                           default: inside the test bed (tests/testbed), a
#                           QEMU VM with a real KVM, one boot per build
#   KILN_RESULTS=DIR        keep logs, API traffic and test-bed logs in DIR
#   KILN_TEST_ALL_BUILDS=1  in the test bed too, run every guest-booting
#                           executable in both builds (slower by ~20 min)
set -uo pipefail
cd "$(dirname "$0")/.."
t_start=$SECONDS
. scripts/deps.sh
testbed_pkgs=()
[ "${KILN_TESTBED:-vm}" = host ] || testbed_pkgs=(qemu-system-x86 busybox-static kmod)
# what tests/linux/build.py makes the Linux guest image with
linux_pkgs=(busybox-static kmod e2fsprogs libc6-dev binutils)
kiln_deps "${testbed_pkgs[@]}" "${linux_pkgs[@]}" ||
	{ echo "could not install the build dependencies"; echo "0 passed, 1 failed"; exit 1; }

passed=0 failed=0 skipped=0
check() { # NAME COMMAND...: one pass/fail for a whole command, with its time
	local name=$1 t0=$SECONDS
	shift
	if "$@" >"$results/$name.log" 2>&1; then
		passed=$((passed + 1))
		printf '%-40s passed  (%ds)\n' "$name" $((SECONDS - t0))
	else
		failed=$((failed + 1))
		printf '%-40s FAILED  (%ds)\n' "$name" $((SECONDS - t0))
		tail -n 40 "$results/$name.log" | sed 's/^/    /'
	fi
}

build() {
	local dir=$1
	shift
	# reconfigure an existing directory too: test files are picked up at configure time
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" || return 1
	else
		meson setup "$dir" "$@" || return 1
	fi
	ninja -C "$dir"
}

if [ -n "${KILN_RESULTS:-}" ]; then
	results=$KILN_RESULTS
	mkdir -p "$results"
else
	results=$(mktemp -d)
	trap 'rm -rf "$results"' EXIT
fi

# the Linux tests need Debian's cloud kernel (scripts/fetch-linux.sh) and the
# guest image built from it and Debian's packages (tests/linux/build.py runs
# both); without them those tests report themselves skipped
python3 tests/linux/build.py >"$results/linux-image.log" 2>&1 ||
	echo "note: could not build the Linux guest image (linux-image.log); the Linux tests will be skipped"

[ "${KILN_TESTBED:-vm}" = host ] || check testbed-image python3 tests/testbed/testbed.py --prepare
check build build build
check build-asan build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
if [ "$failed" -ne 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
	exit 1
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export KILN_API_LOG=$results/api-traffic.jsonl
# in the test bed each executable that boots a guest runs in one build: the
# Linux guests in the plain build users run, the freestanding (and hostile)
# guests under ASan+UBSan (docs/testbed.md, "One build each"); on a host
# with a working /dev/kvm, or with KILN_TEST_ALL_BUILDS=1, all run in both
split=()
[ "${KILN_TESTBED:-vm}" = host ] || split=(--suite-in linux:build --suite-in guests:build-asan)
python3 scripts/run-tests.py --totals "$results/totals" --work "$results" "${split[@]}" \
	build build-asan
if read -r tp tf ts <"$results/totals"; then
	passed=$((passed + tp)) failed=$((failed + tf)) skipped=$((skipped + ts))
else
	echo "the test runner itself failed"
	failed=$((failed + 1))
fi

if [ -z "${KILN_TEST_FILTER:-}" ]; then
	[ "${KILN_TESTBED:-vm}" = host ] ||
		check testbed-selftest python3 tests/testbed/test_testbed.py -v
	# the tests' API traffic against openapi.yaml and, when ../shared/firecracker has it, Firecracker's swagger
	check openapi-traffic python3 scripts/validate-openapi.py --spec openapi.yaml \
		--firecracker-spec ../shared/firecracker/firecracker.yaml "$KILN_API_LOG"
	check validate-openapi python3 tests/test_validate_openapi.py -v
	check linux-image python3 tests/linux/test_build.py -v
	# every fuzz target for a bounded time; a crash fails its check and the
	# log names the reproducer
	fuzz_secs=${KILN_FUZZ_SECONDS:-8}
	# built two at a time first (each is one clang run of ~10 s); the runs below reuse them
	check fuzz-build bash -c 'scripts/fuzz.sh list |
		KILN_FUZZ_DIR=build-fuzz xargs -P 2 -n 1 scripts/fuzz.sh build'
	for t in $(scripts/fuzz.sh list); do
		check "fuzz-$t" env KILN_FUZZ_DIR=build-fuzz scripts/fuzz.sh "$t" "$fuzz_secs"
	done
	check clang-format bash -c 'git ls-files "*.c" "*.h" | grep -v "^tests/guests/" | xargs clang-format --dry-run --Werror'
fi

echo "test.sh took $((SECONDS - t_start)) s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
