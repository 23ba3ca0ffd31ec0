#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# fetch-linux.sh [DIR]: puts Debian's current cloud kernel in DIR (default
# tests/linux/cache, gitignored) for kiln's Linux boot tests:
#   DIR/bzImage  the package's vmlinuz (boot protocol 2.15, LZ4 payload)
#   DIR/vmlinux  the ELF kernel extracted from it (has the PVH note)
#   DIR/kernel-root/lib/modules/VERSION
#                the same package's modules, for tests/linux/build.py
#                (`modprobe -d DIR/kernel-root -S VERSION`)
#   DIR/kernel-package
#                the package's name and version, written last
# All four come from one download, so the modules match the kernel.
# Needs no root: `apt-get download` + `dpkg-deb -x`. As root it may run
# `apt-get update` (when the package cannot be resolved) and install lz4.
# Idempotent: does nothing when all four are there (a cache from before the
# modules were kept is fetched again).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/tests/linux/cache}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if [ -s "$dir/vmlinux" ] && [ -s "$dir/bzImage" ] && [ -s "$dir/kernel-package" ] &&
	[ -d "$dir/kernel-root/lib/modules" ]; then
	echo "fetch-linux: already there: $dir/bzImage $dir/vmlinux ($(cat "$dir/kernel-package"))"
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
rm -rf "$dir/kernel-root"
mv "$work/kernel-root" "$dir/kernel-root"
mv "$work/bzImage" "$dir/bzImage"
mv "$work/vmlinux" "$dir/vmlinux"
dpkg-deb -f "$deb" Package Version | sed 's/^[^:]*: //' | paste -sd ' ' >"$dir/kernel-package"
echo "fetch-linux: $pkg"
echo "fetch-linux: modules: $dir/kernel-root/lib/modules"
echo "fetch-linux: bzImage: $dir/bzImage"
echo "fetch-linux: vmlinux: $dir/vmlinux"
