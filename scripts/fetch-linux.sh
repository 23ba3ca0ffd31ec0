#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# fetch-linux.sh [DIR]: puts Debian's current cloud kernel in DIR (default
# tests/linux/cache, gitignored) for kiln's Linux boot tests:
#   DIR/bzImage  the package's vmlinuz (boot protocol 2.15, LZ4 payload)
#   DIR/vmlinux  the ELF kernel extracted from it (has the PVH note)
#   DIR/modules/ virtio_ring.ko, virtio.ko, virtio_mmio.ko and virtio-rng.ko
#                from the same package: this kernel has virtio as modules only
#   DIR/kernel-root/lib/modules/VERSION
#                all of the package's modules, for tests/linux/build.py
#                (`modprobe -d DIR/kernel-root -S VERSION`)
#   DIR/kernel-package
#                the package's name and version, written last
# All come from one download, so the modules match the kernel.
# Needs no root: `apt-get download` + `dpkg-deb -x`. As root it may run
# `apt-get update` (when the package cannot be resolved) and install lz4.
# Idempotent: does nothing when DIR already holds all of these (a cache
# from before one of them was kept is fetched again).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/tests/linux/cache}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

VIRTIO_MODULES="virtio_ring virtio virtio_mmio virtio-rng"
have=yes
for f in vmlinux bzImage kernel-package $(printf 'modules/%s.ko ' $VIRTIO_MODULES); do
	[ -s "$dir/$f" ] || have=
done
[ -d "$dir/kernel-root/lib/modules" ] || have=
if [ -n "$have" ]; then
	echo "fetch-linux: already there: $dir/bzImage $dir/vmlinux $dir/modules $dir/kernel-root" \
		"($(cat "$dir/kernel-package"))"
	exit 0
fi

is_root() { [ "$(id -u)" = 0 ]; }

# the versioned image package that the linux-image-cloud-amd64 metapackage pulls in
resolve() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1
}
pkg=$(resolve || true)
if [ -z "$pkg" ] && is_root; then
	echo "fetch-linux: linux-image-cloud-amd64 unknown to apt-cache, running apt-get update"
	apt-get update -qq
	pkg=$(resolve || true)
fi
if [ -z "$pkg" ]; then
	echo "fetch-linux: cannot resolve linux-image-cloud-amd64 (run apt-get update as root)" >&2
	exit 1
fi

if ! command -v lz4 >/dev/null 2>&1; then
	if is_root; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lz4 >/dev/null
	else
		echo "fetch-linux: the lz4 tool is missing (apt-get install lz4)" >&2
		exit 1
	fi
fi

work=$(mktemp -d)
chmod 755 "$work" # apt's _apt user downloads into it
trap 'rm -rf "$work"' EXIT INT TERM

echo "fetch-linux: downloading $pkg"
# (as root, apt warns that its _apt user cannot write here; harmless, shown only on failure)
if ! (cd "$work" && apt-get download -q "$pkg" >"$work/apt.log" 2>&1); then
	cat "$work/apt.log" >&2
	echo "fetch-linux: apt-get download $pkg failed" >&2
	exit 1
fi
deb=$(ls "$work"/*.deb)
dpkg-deb -x "$deb" "$work/root"
vmlinuz=$(ls "$work"/root/boot/vmlinuz-* | head -n 1)
[ -f "$vmlinuz" ] || { echo "fetch-linux: no boot/vmlinuz-* in $deb" >&2; exit 1; }
cp "$vmlinuz" "$work/bzImage"

# The payload is an LZ4 legacy frame (magic 02 21 4c 18); lz4 -d stops at
# the end of the frame's data and ignores what the bzImage puts after it.
# The magic bytes may also occur by chance earlier, so try the first few.
found=
for off in $(grep -obUaP '\x02\x21\x4c\x18' "$work/bzImage" | head -n 8 | cut -d: -f1); do
	tail -c +"$((off + 1))" "$work/bzImage" | lz4 -dc >"$work/vmlinux" 2>/dev/null || true
	if readelf -h "$work/vmlinux" >/dev/null 2>&1; then
		found=$off
		break
	fi
done
if [ -z "$found" ]; then
	echo "fetch-linux: no LZ4 legacy frame in $vmlinuz decompresses to an ELF" >&2
	exit 1
fi

# the modules folder (lib/modules, or usr/lib/modules in a merged-/usr package)
mods=
for m in "$work/root/lib/modules" "$work/root/usr/lib/modules"; do
	[ -d "$m" ] && mods=$m && break
done
[ -n "$mods" ] || { echo "fetch-linux: no lib/modules in $deb" >&2; exit 1; }
mkdir -p "$work/kernel-root/lib"
mv "$mods" "$work/kernel-root/lib/modules"

# the stamp goes first and comes back last: an interrupted run is fetched again
rm -f "$dir/kernel-package"
mkdir -p "$dir/modules"
for m in $VIRTIO_MODULES; do
	ko=$(find "$work/kernel-root/lib/modules" -name "$m.ko" | head -n 1)
	[ -n "$ko" ] || { echo "fetch-linux: no $m.ko in $deb" >&2; exit 1; }
	cp "$ko" "$dir/modules/$m.ko"
done
rm -rf "$dir/kernel-root"
mv "$work/kernel-root" "$dir/kernel-root"
mv "$work/bzImage" "$dir/bzImage"
mv "$work/vmlinux" "$dir/vmlinux"
dpkg-deb -f "$deb" Package Version | sed 's/^[^:]*: //' | paste -sd ' ' >"$dir/kernel-package"
echo "fetch-linux: $pkg"
echo "fetch-linux: kernel-root: $dir/kernel-root/lib/modules"
echo "fetch-linux: bzImage: $dir/bzImage"
echo "fetch-linux: vmlinux: $dir/vmlinux"
echo "fetch-linux: modules: $dir/modules ($VIRTIO_MODULES)"
