#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Boots Debian's cloud kernel with kiln through the API, on an ext4 root
# built from Debian packages (tests/linux/build.py, cached in
# tests/linux/cache), and gives you its console.
#   examples/linux-guest/run.sh              a shell on the console; `reboot -f` ends it
#   examples/linux-guest/run.sh CMD [ARG..]  runs CMD in the guest, then the guest resets
# CMD and its arguments travel on the kernel command line (kiln.run=, see
# tests/linux/README.md), so none may hold a space or a comma. kiln exits
# with status 0 when the guest resets. On a machine without a usable
# /dev/kvm the whole run goes inside the test bed (tests/testbed), which has
# no terminal: give a CMD there.
#   KILN_TESTBED=vm|host   force the test bed, or this host's /dev/kvm
#   MEM_MIB, VCPUS          the VM's size (256, 2)
set -euo pipefail
cd "$(dirname "$0")/../.."

for a in "$@"; do
	case $a in *[[:space:],]*)
		echo "run.sh: \"$a\" has a space or a comma, which kiln.run= cannot carry" >&2
		exit 2 ;;
	esac
done

kvm_usable() { # /dev/kvm opens and answers KVM_GET_API_VERSION (12)
	python3 -c 'import fcntl, os, sys
fd = os.open("/dev/kvm", os.O_RDWR)
sys.exit(0 if fcntl.ioctl(fd, 0xAE00) == 12 else 1)' 2>/dev/null
}

if [ "${KILN_IN_TESTBED:-}" != 1 ]; then
	. scripts/deps.sh
	kiln_deps busybox-static kmod e2fsprogs qemu-system-x86
	[ -f build/build.ninja ] || meson setup build >/dev/null
	ninja -C build >/dev/null
	python3 tests/linux/build.py >/dev/null
	where=${KILN_TESTBED:-}
	[ -n "$where" ] || { kvm_usable && where=host || where=vm; }
	if [ "$where" = vm ]; then
		[ $# -gt 0 ] || { echo "run.sh: the test bed has no terminal: give a command" >&2; exit 2; }
		echo "== no usable /dev/kvm here (or KILN_TESTBED=vm): running inside the test bed" >&2
		exec python3 tests/testbed/testbed.py -- env KILN_IN_TESTBED=1 bash "$0" "$@"
	fi
fi

cache=tests/linux/cache
work=$(mktemp -d /tmp/kiln-linux-guest-XXXXXX)
sock=$work/api.sock
cp --sparse=always "$cache/rootfs.ext4" "$work/rootfs.ext4"
# explicit: a background job would read /dev/null, and the console needs stdin
build/daemon/kiln --api-sock "$sock" --id linux-guest <&0 &
kiln_pid=$!
trap 'kill $kiln_pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1000); do
	[ -S "$sock" ] && break
	kill -0 $kiln_pid 2>/dev/null || { wait $kiln_pid; exit; }
	sleep 0.01
done

api() { # METHOD PATH BODY: fails unless kiln answers 2xx
	local code
	code=$(curl -sS --unix-socket "$sock" -X "$1" "http://localhost$2" \
		-H 'Content-Type: application/json' -d "$3" -o "$work/answer" -w '%{http_code}')
	case $code in 2??) ;; *)
		echo "run.sh: $1 $2 answered $code: $(cat "$work/answer")" >&2
		exit 1 ;;
	esac
}

run=
[ $# -gt 0 ] && run=" kiln.run=$(IFS=,; echo "$*")"
api PUT /boot-source "{\"kernel_image_path\": \"$PWD/$cache/vmlinux\",
	\"initrd_path\": \"$PWD/$cache/initramfs.cpio\",
	\"boot_args\": \"console=ttyS0 reboot=k panic=1$run\"}"
api PUT /machine-config "{\"vcpu_count\": ${VCPUS:-2}, \"mem_size_mib\": ${MEM_MIB:-256}}"
api PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$work/rootfs.ext4\",
	\"is_root_device\": true, \"is_read_only\": false}"
api PUT /entropy '{}'
api PUT /actions '{"action_type": "InstanceStart"}'
wait $kiln_pid
