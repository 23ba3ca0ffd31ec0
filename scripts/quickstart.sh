#!/usr/bin/env bash
# kiln quickstart: installs what is missing, builds kiln and its test guests,
# starts kiln with an API socket, configures a microVM with curl, boots the
# hello guest, shows GET / and the guest's console, and stops.
# On a machine without a usable /dev/kvm it says so and runs the VM part
# inside the test bed (tests/testbed: a QEMU VM with an ordinary KVM).
#   KILN_TESTBED=vm|host    force the test bed, or this host's /dev/kvm
set -euo pipefail
cd "$(dirname "$0")/.."

kvm_usable() { # /dev/kvm opens and answers KVM_GET_API_VERSION (12)
	python3 -c 'import fcntl, os, sys
fd = os.open("/dev/kvm", os.O_RDWR)
sys.exit(0 if fcntl.ioctl(fd, 0xAE00) == 12 else 1)' 2>/dev/null
}

if [ "${1:-}" != --in-testbed ]; then
	. scripts/deps.sh
	where=${KILN_TESTBED:-}
	if [ -z "$where" ]; then
		if kvm_usable; then where=host; else where=vm; fi
	fi
	if [ "$where" = vm ]; then
		kiln_deps qemu-system-x86 busybox-static kmod
	else
		kiln_deps
	fi
	[ -f build/build.ninja ] || meson setup build >/dev/null
	ninja -C build >/dev/null
	if [ "$where" = vm ]; then
		echo "== no usable /dev/kvm here (or KILN_TESTBED=vm): running the VM inside the test bed"
		exec python3 tests/testbed/testbed.py -- bash scripts/quickstart.sh --in-testbed
	fi
fi

KILN=build/daemon/kiln
GUEST=$PWD/build/tests/guests/hello.elf
SOCK=$(mktemp -u /tmp/kiln-quickstart-XXXXXX.sock)
CONSOLE=$(mktemp /tmp/kiln-quickstart-XXXXXX.console)

echo "== starting kiln on $SOCK"
"$KILN" --api-sock "$SOCK" --id quickstart --serial-out "$CONSOLE" &
KILN_PID=$!
trap 'kill $KILN_PID 2>/dev/null || true; rm -f "$SOCK" "$CONSOLE"' EXIT
for _ in $(seq 1000); do [ -S "$SOCK" ] && break; sleep 0.01; done

api() { # METHOD PATH [BODY]
	echo "-> $1 $2 ${3:-}"
	curl -sS --unix-socket "$SOCK" -X "$1" "http://localhost$2" \
		-H 'Content-Type: application/json' ${3:+-d "$3"} -w ' [HTTP %{http_code}]\n'
}

# the guest sleeps while we talk to kiln; in the test bed under an emulated
# CPU each command here takes seconds, so it sleeps longer there
SLEEP_MS=1500
[ -n "${KILN_TIME_SCALE:-}" ] && SLEEP_MS=$((1500 * KILN_TIME_SCALE * 4))
api PUT /boot-source "{\"kernel_image_path\": \"$GUEST\", \"boot_args\": \"console=ttyS0 quickstart=1 sleep=$SLEEP_MS\"}"
api PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 128}'
api GET /
api PUT /actions '{"action_type": "InstanceStart"}'
api GET /
api PATCH /vm '{"state": "Paused"}'
api GET /
api PATCH /vm '{"state": "Resumed"}'
api GET /vm/config

echo "== waiting for the guest to finish"
for _ in $(seq $((SLEEP_MS / 10 + 6000))); do kill -0 $KILN_PID 2>/dev/null || break; sleep 0.01; done
wait $KILN_PID && status=0 || status=$?
echo "== guest console:"
cat "$CONSOLE"
echo "== kiln exited with status $status"
