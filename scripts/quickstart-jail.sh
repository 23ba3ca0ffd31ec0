# Sourced by scripts/quickstart.sh --jailed: starts kiln under kiln-jailer
# and gives the guest's files to the jail the way Firecracker's Go SDK does
# (after the jailer made the chroot). Sets SOCK, CONSOLE, ROOTFS, KERNEL,
# INITRD and KILN_PID for the rest of quickstart.sh, and jail_report, which
# shows what the jailed kiln can see and do.

if ldd "$KILN" >/dev/null 2>&1; then # ldd fails on a static binary
	echo "kiln is linked dynamically: the jail holds no libraries." >&2
	echo "Build it static: meson setup --reconfigure build -Dstatic=enabled" >&2
	exit 2
fi
JAIL_ID=quickstart-$$
JAIL_UID=10123 JAIL_GID=10123
JAIL_BASE=$(mktemp -d /tmp/kiln-quickstart-jail-XXXXXX)
ROOT=$JAIL_BASE/kiln/$JAIL_ID/root
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
	CGROUP_VERSION=2 CGROUP_DIR=/sys/fs/cgroup/kiln/$JAIL_ID
else
	CGROUP_VERSION=1 CGROUP_DIR=/sys/fs/cgroup/pids/kiln/$JAIL_ID
fi

jail_cleanup() {
	kill "$KILN_PID" 2>/dev/null || true
	wait "$KILN_PID" 2>/dev/null || true
	rm -rf "$JAIL_BASE"
	rmdir "$CGROUP_DIR" "$(dirname "$CGROUP_DIR")" 2>/dev/null || true
}
trap jail_cleanup EXIT

echo "== starting kiln under kiln-jailer: uid $JAIL_UID, chroot $ROOT, cgroup v$CGROUP_VERSION"
"${KILN_JAILER:-build/jail/kiln-jailer}" --id "$JAIL_ID" --exec-file "$KILN" --uid $JAIL_UID --gid $JAIL_GID \
	--chroot-base-dir "$JAIL_BASE" --cgroup-version $CGROUP_VERSION --cgroup pids.max=256 \
	-- --api-sock /run/kiln.socket --serial-out /console &
KILN_PID=$! # the jailer execs kiln in the same process
SOCK=$ROOT/run/kiln.socket
for _ in $(seq 1000); do [ -S "$SOCK" ] && break; sleep 0.01; done
[ -S "$SOCK" ] || { echo "the jailed kiln did not open $SOCK" >&2; exit 1; }

# the guest's files go into the chroot, owned by the jail's uid
for f in vmlinux initramfs.cpio rootfs.ext4; do
	cp --sparse=always "$CACHE/$f" "$ROOT/$f"
	chown $JAIL_UID:$JAIL_GID "$ROOT/$f"
done
CONSOLE=$ROOT/console
KERNEL=/vmlinux INITRD=/initramfs.cpio ROOTFS=/rootfs.ext4

jail_report() {
	echo "== the jail, as the host sees it while kiln ran:"
	echo "$JAIL_REPORT"
}

# what the jailed kiln runs as, taken while the VM runs (before the guest resets)
jail_snapshot() {
	local threads filtered
	threads=$(ls "/proc/$KILN_PID/task" | wc -l)
	filtered=$(grep -l 'Seccomp:.2' /proc/$KILN_PID/task/*/status | wc -l)
	JAIL_REPORT="$(cd "$ROOT" && find . -mindepth 1 | sort | sed 's/^/   root: /')
   $(grep -E '^(Uid|Gid|CapEff|NoNewPrivs):' "/proc/$KILN_PID/status" | tr '\t' ' ' | paste -sd ';')
   threads under seccomp: $filtered of $threads
   cgroup: $(cat "/proc/$KILN_PID/cgroup" | tr '\n' ' ')"
}
