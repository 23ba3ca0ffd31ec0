#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# /init of the initramfs that tests/linux/build.py makes: loads the kernel
# modules the tests need (lib/modules/load.list, dependencies first), then,
# with root= on the command line (kiln adds "root=/dev/vda rw|ro" for the
# drive with is_root_device), mounts that ext4 drive and switch_roots to it,
# where rootfs-init.sh takes over. Without root= it starts a shell.
# Every line it reports goes to /dev/kmsg ("kiln-initramfs: ..."), so that
# it reaches kiln's stdout through printk; on a failure it says so and
# resets the machine at once (with reboot=k kiln then exits).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# no rate limit on what userspace writes to /dev/kmsg (10 lines in 5 s by default)
echo on >/proc/sys/kernel/printk_devkmsg

say() { echo "kiln-initramfs: $*" >/dev/kmsg; }
fail() {
	say "FAILED: $*"
	reboot -f
	exit 1
}

while read -r ko; do
	insmod "/lib/modules/$ko" || say "insmod $ko failed"
done </lib/modules/load.list

# the kernel's own defaults: read-only unless "rw" comes last
root='' mode=ro fstype=ext4
read -r cmdline </proc/cmdline
for arg in $cmdline; do
	case $arg in
	root=*) root=${arg#root=} ;;
	rootfstype=*) fstype=${arg#rootfstype=} ;;
	ro | rw) mode=$arg ;;
	esac
done
if [ -z "$root" ]; then
	say "no root= on the command line: a shell on the console"
	exec setsid cttyhack sh
fi
case $root in
/dev/*) ;;
*) fail "root=$root: only a /dev path is understood here" ;;
esac

# the driver's probe creates the node at once; wait a little all the same
tries=0
while [ ! -b "$root" ]; do
	tries=$((tries + 1))
	[ "$tries" -le 300 ] || fail "no $root after 30 s (virtio_mmio found: $(ls /sys/bus/virtio/devices 2>/dev/null))"
	sleep 0.1
done
mount -t "$fstype" -o "$mode" "$root" /newroot || fail "mount -t $fstype -o $mode $root"
[ -x /newroot/init ] || fail "$root has no /init"
for m in dev proc sys; do
	mount --move "/$m" "/newroot/$m" || fail "mount --move /$m"
done
echo "kiln-initramfs: $root mounted $mode, switching to it" >/newroot/dev/kmsg
exec switch_root /newroot /init
