#!/usr/bin/env bash
# Installs the Debian packages kiln needs to build and test, if any is missing.
# Sourced by quickstart.sh and test.sh; needs root (or sudo) only when
# something is missing. acpica-tools: iasl, which test_acpi runs on the DSDT.
# strace: test_jailer makes a step after pivot_root fail with its fault injection.
kiln_deps() {
	local pkgs=(meson ninja-build pkg-config gcc clang libclang-rt-dev
		libmicrohttpd-dev libjansson-dev libseccomp-dev libcriterion-dev liburing-dev
		python3 python3-jsonschema python3-yaml curl lz4 iproute2 acpica-tools strace "$@")
	local missing=()
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}"
	local sudo=""
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	$sudo apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
			"${missing[@]}" >/dev/null
}
