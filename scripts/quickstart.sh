#!/usr/bin/env bash
# kiln quickstart: installs what is missing, builds kiln and a Linux guest
# (Debian's cloud kernel and an ext4 root from Debian packages, see
# tests/linux/README.md), starts kiln with an API socket, configures a
# microVM with curl, boots Linux, which runs one command (cat /proc/version)
# and resets, pauses and resumes it on the way, and shows the console.
# On a machine without a usable /dev/kvm it says so and runs the VM part
# inside the test bed (tests/testbed: a QEMU VM with an ordinary KVM).
#   --jailed                run kiln under kiln-jailer (docs/jailer.md): in a
#                           chroot as an unprivileged uid, in its own mount
#                           namespace and a pids cgroup, under seccomp (root)
#   KILN_TESTBED=vm|host    force the test bed, or this host's /dev/kvm
set -euo pipefail
cd "$(dirname "$0")/.."

jailed=
in_testbed=
for arg in "$@"; do
	case $arg in
	--jailed) jailed=--jailed ;;
	--in-testbed) in_testbed=1 ;;
	*) echo "usage: scripts/quickstart.sh [--jailed]" >&2; exit 2 ;;
	esac
done
if [ -n "$jailed" ] && [ "$(id -u)" != 0 ]; then
	echo "--jailed needs root: kiln-jailer makes a chroot, device nodes and cgroups" >&2
	exit 2
fi

kvm_usable() { # /dev/kvm answers KVM_GET_API_VERSION (12) and the CPU has vmx or svm:
	# a paravirtual KVM (PVM) has neither flag and boots only guests built for it
	grep -qwE 'vmx|svm' /proc/cpuinfo || return 1
	python3 -c 'import fcntl, os, sys
fd = os.open("/dev/kvm", os.O_RDWR)
sys.exit(0 if fcntl.ioctl(fd, 0xAE00) == 12 else 1)' 2>/dev/null
}

if [ -z "$in_testbed" ]; then
	. scripts/deps.sh
	where=${KILN_TESTBED:-}
	if [ -z "$where" ]; then
		if kvm_usable; then where=host; else where=vm; fi
	fi
	if [ "$where" = vm ]; then
		kiln_deps qemu-system-x86 busybox-static kmod e2fsprogs
	else
		kiln_deps busybox-static kmod e2fsprogs
	fi
	[ -f build/build.ninja ] || meson setup build >/dev/null
	ninja -C build >/dev/null
	echo "== building the Linux guest (tests/linux/build.py; cached after the first time)"
	python3 tests/linux/build.py >/dev/null
	if [ "$where" = vm ]; then
		echo "== no /dev/kvm for ordinary guests here (or KILN_TESTBED=vm): running the VM inside the test bed"
		exec python3 tests/testbed/testbed.py -- bash scripts/quickstart.sh --in-testbed $jailed
	fi
fi

KILN=${KILN_BIN:-build/daemon/kiln}
CACHE=$PWD/tests/linux/cache
if [ -z "$jailed" ]; then
	SOCK=$(mktemp -u /tmp/kiln-quickstart-XXXXXX.sock)
	CONSOLE=$(mktemp /tmp/kiln-quickstart-XXXXXX.console)
	ROOTFS=$(mktemp /tmp/kiln-quickstart-XXXXXX.ext4)
	KERNEL=$CACHE/vmlinux INITRD=$CACHE/initramfs.cpio
	cp --sparse=always "$CACHE/rootfs.ext4" "$ROOTFS" # the guest writes to its root
	echo "== starting kiln on $SOCK"
	"$KILN" --api-sock "$SOCK" --id quickstart --serial-out "$CONSOLE" &
	KILN_PID=$!
	trap 'kill $KILN_PID 2>/dev/null || true; rm -f "$SOCK" "$CONSOLE" "$ROOTFS"' EXIT
	for _ in $(seq 1000); do [ -S "$SOCK" ] && break; sleep 0.01; done
else
	. scripts/quickstart-jail.sh
fi

api() { # METHOD PATH [BODY]
	echo "-> $1 $2 ${3:-}"
	curl -sS --unix-socket "$SOCK" -X "$1" "http://localhost$2" \
		-H 'Content-Type: application/json' ${3:+-d "$3"} -w ' [HTTP %{http_code}]\n'
}

# Linux runs `cat /proc/version` from its root (kiln.run=, commas for
# spaces), then resets the machine, which ends kiln with status 0
api PUT /boot-source "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 kiln.run=cat,/proc/version\"}"
api PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
api PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$ROOTFS\", \"is_root_device\": true, \"is_read_only\": false}"
api PUT /entropy '{}'
api GET /
api PUT /actions '{"action_type": "InstanceStart"}'
api GET /
api PATCH /vm '{"state": "Paused"}'
api GET /
api PATCH /vm '{"state": "Resumed"}'
api GET /vm/config
[ -z "$jailed" ] || jail_snapshot

echo "== waiting for Linux to run its command and reset"
for _ in $(seq 30000); do kill -0 $KILN_PID 2>/dev/null || break; sleep 0.01; done
wait $KILN_PID && status=0 || status=$?
echo "== the guest console, from Linux starting /init:"
sed -n '/Run \/init as init process/,$p' "$CONSOLE"
[ -z "$jailed" ] || jail_report
echo "== kiln exited with status $status"
exit "$status"
