#!/usr/bin/env bash
# Builds the network-boot kit that CI boots a real QEMU VM with (see boot-vm.sh):
#   $CACHE/qemu/                 QEMU 7.2 unpacked from Debian's .debs (qemu/usr/bin/qemu-system-x86_64)
#   $CACHE/assets/vmlinuz        Debian 12's kernel
#   $CACHE/assets/initrd.img     busybox + Ignition 2.14 + virtio-net modules + .ci/netboot/init
# CACHE is ${PANGEA_NETBOOT_CACHE:-$HOME/.cache/pangea-netboot}, outside the clone. It is rebuilt only
# when its inputs change (this script, init, and the host's ignition/busybox/useradd binaries);
# otherwise this takes a second or two and says it reused the cache.
#
# Why QEMU is unpacked rather than installed: on Debian 12 with qemu-utils 10 from backports,
# `apt-get install qemu-system-x86` (7.2) is blocked by qemu-system-common's Breaks on qemu-utils.
# So the runtime libraries, seabios and ipxe-qemu come from apt, and the three qemu-system .debs are
# unpacked here; QEMU finds its firmware and modules relative to its binary.
set -euo pipefail

KIT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${PANGEA_NETBOOT_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/pangea-netboot}
IGNITION=/usr/lib/dracut/modules.d/30ignition/ignition
# Loaded by init in this order: virtio-net and what it depends on.
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net)
# Tools Ignition's files stage runs (with --root /sysroot) when a config has passwd users/groups.
USER_TOOLS=(useradd usermod userdel groupadd groupdel)

say() { printf '==> netboot: %s\n' "$*"; }
die() { printf 'netboot setup: ERROR: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=
apt_update_once() {
  if [ -z "$APT_UPDATED" ]; then
    say "apt-get update"
    as_root apt-get update -q >/dev/null
    APT_UPDATED=1
  fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

# Installs whichever of the given Debian packages are missing.
ensure_packages() {
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_update_once
  say "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# Host packages the kit needs on every run: firmware QEMU loads at run time (seabios, and ipxe-qemu
# for the virtio-net boot ROM), the static busybox for the guest and for QEMU's guestfwd `nc`,
# Ignition for the guest, passwd for the useradd/usermod Ignition runs in the guest, cpio to pack
# the initrd.
BASE_PACKAGES=(seabios ipxe-qemu busybox-static ignition cpio passwd)
ensure_packages "${BASE_PACKAGES[@]}"

BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || die "busybox is not on PATH although busybox-static is installed"
[ -x "$IGNITION" ] || die "$IGNITION is missing although the ignition package is installed"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # one build at a time

user_tool_paths=()
for t in "${USER_TOOLS[@]}"; do
  p=$(PATH=/usr/sbin:/sbin:$PATH command -v "$t" || true)
  [ -n "$p" ] && user_tool_paths+=("$p")
done

# The cache key: everything that goes into the cache.
KIT_SUM=$(cat "$KIT/setup.sh" "$KIT/init" | sha256sum | cut -d' ' -f1)
KEY=$( { echo "kit $KIT_SUM"; sha256sum "$IGNITION" "$BUSYBOX" "${user_tool_paths[@]}"; } | sha256sum | cut -d' ' -f1)
QEMU="$CACHE/qemu/usr/bin/qemu-system-x86_64"

if [ "$(cat "$CACHE/stamp" 2>/dev/null || true)" = "$KEY" ] \
  && [ -s "$CACHE/assets/vmlinuz" ] && [ -s "$CACHE/assets/initrd.img" ] \
  && [ -e "$CACHE/qemu/usr/share/seabios/bios-256k.bin" ] \
  && [ -e "$CACHE/qemu/usr/lib/ipxe/qemu/efi-virtio.rom" ] \
  && "$QEMU" --version >/dev/null 2>&1; then
  say "reused the cache (inputs unchanged): $(head -n 1 "$CACHE/versions.txt" 2>/dev/null || true)"
  say "cache: $CACHE"
  exit 0
fi

say "building the netboot kit into $CACHE"
STAGE="$CACHE/.staging"
rm -rf "$STAGE"
mkdir -p "$STAGE/qemu" "$STAGE/assets" "$STAGE/kernel" "$STAGE/initrd"
# apt-get download drops to the _apt user when run as root: give it a folder it can reach ($HOME
# may be closed to it), or it warns and downloads unsandboxed.
DEBS=$(mktemp -d "${TMPDIR:-/tmp}/pangea-netboot-debs.XXXXXX")
trap 'rm -rf "$DEBS"' EXIT
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$DEBS"; fi

apt_update_once
# Runtime libraries of qemu-system-x86: its Depends that are libraries.
mapfile -t QEMU_LIBS < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances qemu-system-x86 | awk '$1 ~ /Depends:$/ && $2 ~ /^lib/ {print $2}' | sort -u)
[ ${#QEMU_LIBS[@]} -gt 0 ] || die "apt-cache knows no dependencies of qemu-system-x86 (apt lists missing?)"
ensure_packages "${QEMU_LIBS[@]}"

# The kernel: whatever linux-image-amd64 points at now (a linux-image-6.1.0-N-amd64 on Debian 12).
KERNEL_PKG=$(apt-cache depends linux-image-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')
[ -n "$KERNEL_PKG" ] || die "cannot tell which kernel package linux-image-amd64 depends on"

say "downloading qemu-system-x86 qemu-system-common qemu-system-data $KERNEL_PKG"
(cd "$DEBS" && apt-get download -q qemu-system-x86 qemu-system-common qemu-system-data "$KERNEL_PKG" >/dev/null)

say "unpacking QEMU"
for deb in "$DEBS"/qemu-system-*.deb; do dpkg-deb -x "$deb" "$STAGE/qemu"; done
mkdir -p "$STAGE/qemu/usr/share" "$STAGE/qemu/usr/lib"
ln -sfn /usr/share/seabios "$STAGE/qemu/usr/share/seabios"
ln -sfn /usr/lib/ipxe "$STAGE/qemu/usr/lib/ipxe"
rm -rf "$STAGE/qemu/usr/share/doc" "$STAGE/qemu/usr/share/man"
if ldd "$STAGE/qemu/usr/bin/qemu-system-x86_64" | grep -q "not found"; then
  ldd "$STAGE/qemu/usr/bin/qemu-system-x86_64" | grep "not found" >&2
  die "qemu-system-x86_64 misses the libraries above"
fi
"$STAGE/qemu/usr/bin/qemu-system-x86_64" --version >/dev/null || die "the unpacked qemu-system-x86_64 does not run"

say "unpacking the kernel"
dpkg-deb -x "$DEBS"/linux-image-*.deb "$STAGE/kernel"
vmlinuz=("$STAGE"/kernel/boot/vmlinuz-*)
moddir=("$STAGE"/kernel/lib/modules/*)
[ -f "${vmlinuz[0]}" ] && [ -d "${moddir[0]}" ] || die "no vmlinuz or modules in $KERNEL_PKG"
cp "${vmlinuz[0]}" "$STAGE/assets/vmlinuz"

say "building the initrd"
R="$STAGE/initrd"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,lib/modules,lib64,proc,sys,dev,run,tmp,sysroot,root}
cp "$BUSYBOX" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
install -m 0755 "$KIT/init" "$R/init"
for m in "${MODULES[@]}"; do
  f=$(find "${moddir[0]}/kernel" -name "$m.ko" -print -quit)
  [ -n "$f" ] || die "module $m.ko is not in $KERNEL_PKG"
  cp "$f" "$R/lib/modules/$m.ko"
done
cat >"$R/etc/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc hook: applies the lease to the interface.
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    ;;
esac
exit 0
EOF
chmod 0755 "$R/etc/udhcpc.script"
# Copies an ELF binary and the shared libraries ldd lists, at the paths ldd gives.
copy_elf() {
  local bin=$1 dest=$2 lib
  cp "$bin" "$R$dest"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*' | sort -u); do
    [ -e "$R$lib" ] && continue
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
  done
}
copy_elf "$IGNITION" /usr/bin/ignition
for p in "${user_tool_paths[@]}"; do copy_elf "$p" "/usr/sbin/$(basename "$p")"; done
# Ignition relabels what it writes with setfiles (Debian built it with SELinux support); there is no
# policy here, so a stub that drains its input is enough.
printf '#!/bin/sh\ncat >/dev/null\nexit 0\n' >"$R/usr/sbin/setfiles"
chmod 0755 "$R/usr/sbin/setfiles"
(cd "$R" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -n -9) >"$STAGE/assets/initrd.img"

{
  echo "qemu $(dpkg-deb -f "$(ls "$DEBS"/qemu-system-x86_*.deb)" Version), kernel $KERNEL_PKG $(dpkg-deb -f "$(ls "$DEBS"/linux-image-*.deb)" Version), ignition $(dpkg-query -W -f='${Version}' ignition), busybox $(dpkg-query -W -f='${Version}' busybox-static)"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "runtime libraries: ${QEMU_LIBS[*]}"
} >"$STAGE/versions.txt"

# Swap the new build in; the stamp goes last, so an interrupted build is redone next time.
rm -f "$CACHE/stamp"
rm -rf "$CACHE/qemu" "$CACHE/assets"
mv "$STAGE/qemu" "$CACHE/qemu"
mv "$STAGE/assets" "$CACHE/assets"
mv "$STAGE/versions.txt" "$CACHE/versions.txt"
echo "$KIT_SUM" >"$CACHE/kit.sha256"
rm -rf "$STAGE"
echo "$KEY" >"$CACHE/stamp"

say "built: $(head -n 1 "$CACHE/versions.txt")"
say "vmlinuz $(du -h "$CACHE/assets/vmlinuz" | cut -f1), initrd.img $(du -h "$CACHE/assets/initrd.img" | cut -f1), qemu $(du -sh "$CACHE/qemu" | cut -f1)"
say "cache: $CACHE"
