#!/bin/sh
# The test bed VM's first stage (busybox, from the initramfs image.py
# writes): load the modules, build the root (the host's / over 9p, read-only,
# under a tmpfs overlay), mount the job folder and hand over to stage2.py.
# Any failure powers the VM off; the host then reports the VM ended without
# a result and prints this console.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() {
	echo "testbed-init: $*"
	sync
	poweroff -f
}

load_list() { # FILE: insmod each module named in it, once
	for ko in $(cat "$1"); do
		name=${ko%.ko}
		[ -d "/sys/module/$(echo "$name" | tr - _)" ] && continue
		insmod "/lib/modules/$ko" || fail "insmod $ko failed"
	done
}

load_list /lib/modules/common.list
if grep -qw svm /proc/cpuinfo; then
	load_list /lib/modules/kvm_amd.list
elif grep -qw vmx /proc/cpuinfo; then
	load_list /lib/modules/kvm_intel.list
else
	fail "the VM's CPU has neither svm nor vmx: no KVM inside"
fi
[ -c /dev/kvm ] || fail "the KVM module loaded but /dev/kvm is missing"

opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$opts,ro,cache=loose" root /lower || fail "cannot mount the host's root over 9p"
mount -t tmpfs -o mode=755 tmpfs /rw || fail "tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
	fail "cannot mount the overlay root"
mkdir -p /newroot/testbed-job
mount -t 9p -o "$opts,cache=none" job /newroot/testbed-job || fail "cannot mount the job folder"
[ -x /newroot/usr/bin/python3 ] || fail "the host has no /usr/bin/python3"
umount /proc /sys /dev 2>/dev/null
exec switch_root /newroot /usr/bin/python3 /testbed-job/stage2.py
