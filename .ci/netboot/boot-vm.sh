#!/usr/bin/env bash
# Boots one QEMU VM by iPXE from a boot listener on the host's 127.0.0.1:PORT, with the kit that
# setup.sh built (run that first).
#
#   boot-vm.sh PORT MAC UUID LOGFILE [TIMEOUT_SECONDS (default 150)]
#
# The guest sees the listener as http://10.0.2.100:PORT and can reach nothing else: QEMU's user
# network is restricted, and its one way out is a guestfwd that pipes each guest connection through
# `busybox nc 127.0.0.1 PORT`. Its DHCP hands iPXE the bootfile http://10.0.2.100:PORT/boot.ipxe.
# The serial console (firmware, kernel, the initrd's init) goes to LOGFILE.
#
# Exit status:
#   0    the guest ran init to the end, reported stage=done to /metadata and powered off
#   4    the guest powered off after init reported stage=failed (reason in LOGFILE)
#   3    QEMU exited but init never finished (iPXE or kernel trouble: see LOGFILE)
#   124  timeout: QEMU was killed
#   2    bad arguments or no kit; anything else is QEMU's own failure
set -euo pipefail

usage() { echo "usage: $0 PORT MAC UUID LOGFILE [TIMEOUT_SECONDS]" >&2; exit 2; }
[ $# -ge 4 ] && [ $# -le 5 ] || usage
PORT=$1 MAC=$2 UUID=$3 LOG=$4 TIMEOUT=${5:-150}
[[ $PORT =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || { echo "bad PORT: $PORT" >&2; usage; }
[[ $MAC =~ ^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$ ]] || { echo "bad MAC: $MAC" >&2; usage; }
[[ $UUID =~ ^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$ ]] || { echo "bad UUID: $UUID" >&2; usage; }
[[ $TIMEOUT =~ ^[0-9]+$ ]] || { echo "bad TIMEOUT_SECONDS: $TIMEOUT" >&2; usage; }

KIT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${PANGEA_NETBOOT_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/pangea-netboot}
QEMU="$CACHE/qemu/usr/bin/qemu-system-x86_64"
if [ ! -x "$QEMU" ] || [ ! -s "$CACHE/assets/initrd.img" ]; then
  echo "boot-vm: no netboot kit in $CACHE: run $KIT/setup.sh first" >&2
  exit 2
fi
if [ "$(cat "$KIT/setup.sh" "$KIT/init" | sha256sum | cut -d' ' -f1)" != "$(cat "$CACHE/kit.sha256" 2>/dev/null || true)" ]; then
  echo "boot-vm: the kit in $CACHE was built from another setup.sh/init: run $KIT/setup.sh first" >&2
  exit 2
fi
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || { echo "boot-vm: busybox is missing (Debian package busybox-static): run $KIT/setup.sh" >&2; exit 2; }

mkdir -p "$(dirname "$LOG")"
echo "boot-vm: booting $MAC ($UUID) from http://10.0.2.100:$PORT/boot.ipxe -> 127.0.0.1:$PORT; console in $LOG; timeout ${TIMEOUT}s"
start=$(date +%s)
rc=0
# No romfile=: QEMU then takes its default iPXE ROM for virtio-net (a named one is silently skipped).
# -boot strict=on,reboot-timeout=1000: if iPXE cannot boot, SeaBIOS tries no disk and resets after
# 1 s, which -no-reboot turns into QEMU exiting (exit 3 below) instead of a hang until the timeout.
timeout -k 5 "$TIMEOUT" "$QEMU" \
  -netdev "user,id=n0,restrict=on,bootfile=http://10.0.2.100:$PORT/boot.ipxe,guestfwd=tcp:10.0.2.100:$PORT-cmd:$BUSYBOX nc 127.0.0.1 $PORT" \
  -device "virtio-net-pci,netdev=n0,mac=$MAC" \
  -uuid "$UUID" -boot order=n,strict=on,reboot-timeout=1000 -nographic -no-reboot \
  -accel tcg -cpu max -smp 1 -m 1024 \
  </dev/null >"$LOG" 2>&1 || rc=$?
took=$(($(date +%s) - start))

markers() { grep -a 'PANGEA-NETBOOT:' "$LOG" | tr -d '\r' | sed 's/^/boot-vm:   /' || true; }
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "boot-vm: TIMEOUT after ${took}s; last console lines:" >&2
  tail -n 30 "$LOG" | tr -d '\r' >&2
  exit 124
fi
if [ "$rc" -ne 0 ]; then
  echo "boot-vm: QEMU failed (exit $rc) after ${took}s:" >&2
  tail -n 30 "$LOG" | tr -d '\r' >&2
  exit "$rc"
fi
if grep -aq 'PANGEA-NETBOOT: result=done' "$LOG"; then
  echo "boot-vm: done in ${took}s:"
  markers
  exit 0
fi
if grep -aq 'PANGEA-NETBOOT: result=failed' "$LOG"; then
  echo "boot-vm: the guest reported failure after ${took}s:" >&2
  markers >&2
  exit 4
fi
echo "boot-vm: QEMU exited after ${took}s but init never finished; last console lines:" >&2
tail -n 30 "$LOG" | tr -d '\r' >&2
exit 3
