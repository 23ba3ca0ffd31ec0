#!/usr/bin/env bash
# Boots a microVM with kiln's HTTP API, step by step, with plain curl.
#   examples/boot-with-curl.sh [KERNEL] [BOOT_ARGS]
# KERNEL defaults to the hello test guest (build it with `ninja -C build`);
# any ELF vmlinux or bzImage works. The guest's console is this terminal.
set -euo pipefail
cd "$(dirname "$0")/.."

kernel=${1:-$PWD/build/tests/guests/hello.elf}
args=${2:-console=ttyS0 reboot=k panic=1 sleep=1000}
sock=/tmp/kiln-example-$$.sock

# 1. start the daemon: it only serves the API until InstanceStart
build/daemon/kiln --api-sock "$sock" --id example &
kiln=$!
trap 'kill $kiln 2>/dev/null; rm -f "$sock"' EXIT
while [ ! -S "$sock" ]; do sleep 0.01; done

call() { curl -sS --unix-socket "$sock" -X "$1" "http://localhost$2" \
	-H 'Content-Type: application/json' ${3:+-d "$3"}; echo; }

# 2. what to boot
call PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"boot_args\": \"$args\"}"
# 3. how big the machine is
call PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
# 4. optional: where logs and metrics go
call PUT /logger "{\"log_path\": \"/tmp/kiln-example-$$.log\", \"level\": \"Info\"}"
call PUT /metrics "{\"metrics_path\": \"/tmp/kiln-example-$$.metrics\"}"
# 5. boot
call PUT /actions '{"action_type": "InstanceStart"}'
# 6. look at it, pause and resume it
call GET /
call PATCH /vm '{"state": "Paused"}'
call GET /
call PATCH /vm '{"state": "Resumed"}'
call PUT /actions '{"action_type": "FlushMetrics"}'
# 7. the daemon exits when the guest resets (reboot=k) or shuts down
wait $kiln || true
echo "metrics: $(tail -n 1 /tmp/kiln-example-$$.metrics | cut -c1-200)..."
rm -f /tmp/kiln-example-$$.log /tmp/kiln-example-$$.metrics
