#!/usr/bin/env bash
# Brings up libvirt (the QEMU driver) and a venv with sushy-tools' Redfish emulator, so a test can
# power real VMs on and off through Redfish (sushy-tools' libvirt driver). The VMs themselves are
# defined by libvirt-vm.sh, with the network-boot kit's QEMU (setup.sh builds it).
#
#   libvirt-up.sh
#
# Idempotent: when everything is already up, it checks and exits in well under a second.
#   - Debian packages libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients python3-libvirt
#     (never qemu-system-x86: it conflicts with the backported qemu-utils; see setup.sh);
#   - the user and group libvirt-qemu, which the QEMU driver insists on even when it runs QEMU as
#     root;
#   - /etc/libvirt/qemu.conf set for a container without systemd, on cgroups v1 (see SETTINGS);
#   - libvirtd and virtlogd started by hand (no systemd here), unless they already run;
#   - the venv ${PANGEA_SUSHY_LIBVIRT_VENV:-$HOME/.cache/pangea-sushy-libvirt}, made by Debian's
#     /usr/bin/python3 with --system-site-packages so that it sees python3-libvirt, holding
#     sushy-tools==2.2.0. Start the emulator as VENV/bin/sushy-emulator with a config file that sets
#     SUSHY_EMULATOR_LIBVIRT_URI = 'qemu:///system', after this script: it may restart libvirtd,
#     and the emulator keeps its libvirt handles for life (after a libvirtd restart it answers 500,
#     "client socket is closed", until it is restarted too).
# Exit status: 0 when all is up; 1 with a message on stderr otherwise.
set -euo pipefail

VENV=${PANGEA_SUSHY_LIBVIRT_VENV:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/pangea-sushy-libvirt}
SUSHY_PIN=2.2.0
URI=qemu:///system
PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients python3-libvirt)
QEMU_CONF=/etc/libvirt/qemu.conf
LIBVIRTD_CONF=/etc/libvirt/libvirtd.conf
# qemu.conf: QEMU runs as root (the kit's QEMU lives under root's home) and libvirt touches no file
# owners, no SELinux/AppArmor labels and no cgroups (a container on cgroups v1, without systemd).
# seccomp_sandbox = 0: libvirt's default `-sandbox on,...,spawn=deny` kills QEMU as soon as the
# guest opens a connection, for which guestfwd runs `busybox nc` (libvirt-vm.sh's NIC): iPXE prints
# "http://10.0.2.100:PORT/boot.ipxe..", and the domain stops with reason "crashed".
SETTINGS=(
  'user="root"'
  'group="root"'
  'dynamic_ownership=0'
  'security_driver="none"'
  'cgroup_controllers=[]'
  'seccomp_sandbox=0'
)
LIBVIRTD_LOG=/var/log/libvirt/libvirtd.log

say() { printf '==> libvirt-up: %s\n' "$*"; }
die() { printf 'libvirt-up: ERROR: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
# A daemon runs when its pid file names a live process of that name.
running() {
  local pid
  pid=$(cat "/run/$1.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

# One run at a time (tests may call this in parallel): two would race to start libvirtd.
mkdir -p /run/lock
exec 9>/run/lock/pangea-libvirt-up.lock
flock 9

# 1. Packages.
missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -q >/dev/null || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi
for b in libvirtd virtlogd virsh; do
  PATH=/usr/sbin:/sbin:$PATH command -v "$b" >/dev/null || die "$b is missing although ${PACKAGES[*]} are installed"
done
export PATH=/usr/sbin:/sbin:$PATH

# 2. Folders and the libvirt-qemu user.
for d in /run/libvirt /var/log/libvirt /var/lib/libvirt/qemu /var/cache/libvirt/qemu; do
  [ -d "$d" ] || as_root mkdir -p "$d"
done
# Debian's libvirt also resolves the group libvirt-qemu at start ("Failed to parse group
# 'libvirt-qemu'": the QEMU driver does not start), though qemu.conf then says root.
for g in kvm libvirt-qemu; do
  getent group "$g" >/dev/null || as_root groupadd -r "$g" || die "cannot create the group $g"
done
if ! id libvirt-qemu >/dev/null 2>&1; then
  say "creating the user libvirt-qemu"
  as_root useradd -r -g kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu || die "cannot create the user libvirt-qemu"
fi

# 3. qemu.conf (and libvirtd's log file). Changing either restarts a running libvirtd.
changed=
# set_key FILE KEY VALUE: makes the one uncommented "KEY = VALUE" line of FILE.
set_key() {
  local file=$1 key=$2 value=$3 want
  want="$key = $value"
  if grep -qxF "$want" "$file"; then return 0; fi
  if grep -qE "^[[:space:]]*$key[[:space:]]*=" "$file"; then
    # Replace every uncommented assignment (the value may not hold the sed delimiter '|').
    as_root sed -i -E "s|^[[:space:]]*$key[[:space:]]*=.*|$want|" "$file"
  else
    printf '%s\n' "$want" | as_root tee -a "$file" >/dev/null
  fi
  grep -qxF "$want" "$file" || die "could not set '$want' in $file"
  changed=1
}
# Without libvirt-daemon-system (not installed: it pulls in more) neither file exists; libvirtd then
# takes its built-in defaults, which the lines below override.
for f in "$QEMU_CONF" "$LIBVIRTD_CONF"; do
  [ -f "$f" ] || { as_root mkdir -p "$(dirname "$f")" && echo "# Written by Pangea's .ci/netboot/libvirt-up.sh" | as_root tee "$f" >/dev/null; } \
    || die "cannot create $f"
done
for s in "${SETTINGS[@]}"; do set_key "$QEMU_CONF" "${s%%=*}" "${s#*=}"; done
set_key "$LIBVIRTD_CONF" log_outputs "\"3:file:$LIBVIRTD_LOG\""
[ -z "$changed" ] || say "configured $QEMU_CONF ($(IFS=' '; echo "${SETTINGS[*]}")) and libvirtd's log $LIBVIRTD_LOG"

# 4. The daemons. No systemd here: they daemonize themselves (-d) and write /run/NAME.pid. They
# must not inherit the lock's fd 9 (9>&-), or they would hold the lock for ever.
if ! running virtlogd; then
  say "starting virtlogd"
  as_root virtlogd -d 9>&- || die "virtlogd -d failed"
fi
answers() { as_root virsh -q -c "$URI" list --all >/dev/null 2>&1; }
if [ -n "$changed" ] && { running libvirtd || answers; }; then
  running libvirtd || die "libvirtd answers on $URI but /run/libvirtd.pid does not name it: restart it by hand for the new $QEMU_CONF"
  pid=$(cat /run/libvirtd.pid)
  say "restarting libvirtd (pid $pid) for its new configuration (running domains survive it)"
  as_root kill "$pid"
  for _ in $(seq 300); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
  [ ! -e "/proc/$pid" ] || die "libvirtd (pid $pid) did not stop within 30 s"
fi
if ! running libvirtd && ! answers; then
  say "starting libvirtd"
  as_root libvirtd -d 9>&- || die "libvirtd -d failed (see $LIBVIRTD_LOG)"
fi
ok=
for _ in $(seq 100); do
  if answers; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || die "libvirtd does not answer on $URI within 10 s (see $LIBVIRTD_LOG): $(as_root virsh -c "$URI" list --all 2>&1 | tail -n 1)"

# 5. The emulator's venv.
venv_ok() {
  "$VENV/bin/python" - "$SUSHY_PIN" 2>/dev/null <<'EOF'
import importlib.metadata, sys
import libvirt  # python3-libvirt, seen through --system-site-packages
sys.exit(importlib.metadata.version("sushy-tools") != sys.argv[1])
EOF
}
if ! venv_ok; then
  [ -x /usr/bin/python3 ] || die "/usr/bin/python3 is missing"
  /usr/bin/python3 -c 'import libvirt' 2>/dev/null || die "Debian's python3 cannot import libvirt although python3-libvirt is installed"
  if [ -e "$VENV" ]; then
    # A venv that cannot see python3-libvirt (made by another python, or without
    # --system-site-packages) is made again; anything else there is left alone.
    [ -f "$VENV/pyvenv.cfg" ] || die "$VENV exists but is not a venv: remove it, or set PANGEA_SUSHY_LIBVIRT_VENV"
    if ! "$VENV/bin/python" -c 'import libvirt' 2>/dev/null; then
      say "remaking $VENV: it cannot see python3-libvirt"
      rm -rf "$VENV"
    fi
  fi
  say "making the venv $VENV (sushy-tools==$SUSHY_PIN, with Debian's python3-libvirt)"
  [ -e "$VENV" ] || /usr/bin/python3 -m venv --system-site-packages "$VENV" || die "python3 -m venv $VENV failed (Debian package python3-venv?)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "sushy-tools==$SUSHY_PIN" \
    || die "pip install sushy-tools==$SUSHY_PIN into $VENV failed"
  venv_ok || die "$VENV still lacks sushy-tools $SUSHY_PIN or libvirt after pip install"
fi
[ -x "$VENV/bin/sushy-emulator" ] || die "$VENV/bin/sushy-emulator is missing"

say "up: libvirtd (pid $(cat /run/libvirtd.pid 2>/dev/null || echo '?')) on $URI, virtlogd (pid $(cat /run/virtlogd.pid)), $VENV/bin/sushy-emulator"
