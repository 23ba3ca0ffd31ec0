#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# /init of the ext4 root image that tests/linux/build.py makes, started by
# the initramfs's switch_root with /dev, /proc and /sys already mounted
# (it mounts what is missing). It says how / is mounted,
#   kiln-rootfs: up, / is rw
# then runs the command in kiln.run= on the kernel command line, with its
# commas turned into spaces (the command line cannot quote):
#   kiln.run=kt-write,/kiln-1234,65536,1234  runs  kt-write /kiln-1234 65536 1234
# says how it ended,
#   kiln-rootfs: exit 0
# and resets the machine at once: `reboot -n -f`, without a sync, so only
# what the command made durable itself (fsync) is known to be on the drive.
# Without kiln.run= it starts a shell on the console. Its lines go to
# /dev/kmsg, as the initramfs's do.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

# (busybox-static has no mountpoint applet: /proc/mounts says what is there)
[ -e /proc/self ] || mount -t proc proc /proc
mounted() { awk -v d="$1" '$2 == d { found = 1 } END { exit !found }' /proc/mounts; }
mounted /dev || mount -t devtmpfs devtmpfs /dev
mounted /sys || mount -t sysfs sysfs /sys

say() { echo "kiln-rootfs: $*" >/dev/kmsg; }

# the options of the last mount on / (the one in effect): rw or ro first
mode=$(awk '$2 == "/" { split($4, o, ","); m = o[1] } END { print m }' /proc/mounts)
say "up, / is $mode"

run=
read -r cmdline </proc/cmdline
for arg in $cmdline; do
	case $arg in
	kiln.run=*) run=${arg#kiln.run=} ;;
	esac
done
if [ -z "$run" ]; then
	say "no kiln.run= on the command line: a shell on the console"
	exec setsid cttyhack sh
fi

set -f
IFS=,
# shellcheck disable=SC2086 # split on the commas, on purpose
set -- $run
unset IFS
set +f
say "run: $*"
"$@"
say "exit $?"
reboot -n -f
