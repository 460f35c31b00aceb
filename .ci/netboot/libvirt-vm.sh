#!/usr/bin/env bash
# Defines (or removes) a libvirt domain that network-boots by iPXE from a boot listener on the
# host's 127.0.0.1:PORT, exactly as boot-vm.sh's QEMU does, so that a Redfish BMC emulator
# (sushy-tools' libvirt driver) can power it on and off. Run setup.sh (the kit's QEMU) and
# libvirt-up.sh first.
#
#   libvirt-vm.sh define NAME MAC UUID PORT LOGFILE [ON_REBOOT (destroy|restart, default destroy)]
#   libvirt-vm.sh undefine NAME
#
# define: a persistent domain (it outlives power-off, so the BMC can power it on again), shut off,
#   on qemu:///system: TCG (KVM only with PANGEA_LIBVIRT_VM_KVM=1, see below), 1 vCPU, 1024 MiB, the
#   kit's QEMU as its <emulator>, no disk, and one virtio NIC with MAC that boots first
#   (<boot dev='network'/>). As in boot-vm.sh its user-mode network is restricted: the guest can
#   reach only http://10.0.2.100:PORT, which a guestfwd pipes, one connection at a time, through
#   `busybox nc 127.0.0.1 PORT`, and DHCP hands iPXE the bootfile http://10.0.2.100:PORT/boot.ipxe.
#   libvirt's <interface type='user'> cannot say restrict/bootfile/guestfwd, so that netdev is
#   passed to QEMU on its command line (<qemu:commandline>), and <qemu:override> plugs the libvirt
#   NIC (alias ua-pangea-nic) into it. libvirt's own netdev for the NIC is left without a peer
#   (QEMU warns "netdev hostua-pangea-nic has no peer"): no guest traffic can reach it. The NIC
#   stays a libvirt <interface>, so the Redfish emulator lists its MAC under EthernetInterfaces and
#   can move the network boot (PATCH Boot.BootSourceOverrideTarget=Pxe sets <boot order='1'/> on
#   it); a NIC passed to QEMU whole would be invisible to it (the PATCH answers 500).
#   The serial console (SeaBIOS, iPXE, the kernel, init) goes to LOGFILE, which QEMU truncates at
#   each power-on. The guest's power-off ends the domain (on_poweroff destroy); so does a reboot
#   unless ON_REBOOT is restart (then a guest-side reboot and Redfish GracefulRestart restart it,
#   but a guest that keeps failing, the init's panic included, reboots for ever). With destroy,
#   SeaBIOS also resets 1 s after iPXE gives up, so a failed network boot powers off instead of
#   hanging, as boot-vm.sh's -no-reboot does. Redfish ForceRestart is destroy + start either way.
#   An existing shut-off domain of that name is replaced; a running one is an error.
# undefine: forces the domain off (if it runs) and removes it; no domain of that name is fine.
#
# Exit status: 0 done; 2 bad arguments or no kit; 1 libvirt refused (its message on stderr).
set -euo pipefail

URI=qemu:///system
usage() {
  echo "usage: $0 define NAME MAC UUID PORT LOGFILE [destroy|restart]" >&2
  echo "       $0 undefine NAME" >&2
  exit 2
}
die() { printf 'libvirt-vm: ERROR: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
virsh_() { as_root env PATH="/usr/sbin:/sbin:$PATH" virsh -q -c "$URI" "$@"; }
check_name() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$ ]] || { echo "bad NAME: $1 (letters, digits, . _ -; at most 63)" >&2; usage; }
}
# Escapes text for an XML attribute or element.
xml() { local s=$1; s=${s//&/&amp;}; s=${s//</&lt;}; s=${s//>/&gt;}; s=${s//\'/&apos;}; s=${s//\"/&quot;}; printf '%s' "$s"; }
exists() { virsh_ dominfo "$1" >/dev/null 2>&1; }
state() { virsh_ domstate "$1" 2>/dev/null | head -n 1; }

[ $# -ge 1 ] || usage
command -v virsh >/dev/null || PATH=/usr/sbin:/sbin:$PATH command -v virsh >/dev/null \
  || { echo "libvirt-vm: virsh is missing: run $(dirname "$0")/libvirt-up.sh first" >&2; exit 2; }
case $1 in
undefine)
  [ $# -eq 2 ] || usage
  NAME=$2
  check_name "$NAME"
  exists "$NAME" || { echo "libvirt-vm: no domain $NAME"; exit 0; }
  # (A transient domain vanishes when destroyed: that is fine too.)
  if [ "$(state "$NAME")" != "shut off" ] && ! out=$(virsh_ destroy "$NAME" 2>&1); then
    [ "$(state "$NAME")" = "shut off" ] || ! exists "$NAME" || die "virsh destroy $NAME: $out"
  fi
  if exists "$NAME" && ! out=$(virsh_ undefine "$NAME" 2>&1); then
    ! exists "$NAME" || die "virsh undefine $NAME: $out"
  fi
  echo "libvirt-vm: undefined $NAME"
  exit 0
  ;;
define) ;;
*) usage ;;
esac

[ $# -ge 6 ] && [ $# -le 7 ] || usage
NAME=$2 MAC=$3 UUID=$4 PORT=$5 LOG=$6 ON_REBOOT=${7:-destroy}
check_name "$NAME"
[[ $MAC =~ ^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$ ]] || { echo "bad MAC: $MAC" >&2; usage; }
[[ $UUID =~ ^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$ ]] || { echo "bad UUID: $UUID" >&2; usage; }
[[ $PORT =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || { echo "bad PORT: $PORT" >&2; usage; }
[ -n "$LOG" ] && [[ $LOG != *$'\n'* ]] || { echo "bad LOGFILE: $LOG" >&2; usage; }
[[ $ON_REBOOT =~ ^(destroy|restart)$ ]] || { echo "bad ON_REBOOT: $ON_REBOOT (destroy or restart)" >&2; usage; }
MAC=${MAC,,} UUID=${UUID,,}

KIT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${PANGEA_NETBOOT_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/pangea-netboot}
QEMU="$CACHE/qemu/usr/bin/qemu-system-x86_64"
if [ ! -x "$QEMU" ] || [ ! -s "$CACHE/assets/initrd.img" ]; then
  echo "libvirt-vm: no netboot kit in $CACHE: run $KIT/setup.sh first" >&2
  exit 2
fi
if [ "$(cat "$KIT/setup.sh" "$KIT/init" | sha256sum | cut -d' ' -f1)" != "$(cat "$CACHE/kit.sha256" 2>/dev/null || true)" ]; then
  echo "libvirt-vm: the kit in $CACHE was built from another setup.sh/init: run $KIT/setup.sh first" >&2
  exit 2
fi
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || { echo "libvirt-vm: busybox is missing (Debian package busybox-static): run $KIT/setup.sh" >&2; exit 2; }
virsh_ list --all >/dev/null 2>&1 || { echo "libvirt-vm: libvirtd does not answer on $URI: run $KIT/libvirt-up.sh" >&2; exit 2; }

# QEMU (as root) writes the console; the folder must exist, and libvirt wants an absolute path.
mkdir -p "$(dirname "$LOG")"
LOG=$(realpath -m "$LOG")

# TCG by default, as boot-vm.sh: on this machine kind KVM runs QEMU, but Debian's iPXE ROM dies under
# it ("KVM internal error. Suberror: 1 / emulation failure": libvirt pauses the domain; a bare QEMU
# with -no-reboot exits) right after "Press Ctrl-B", with -cpu host and -cpu max alike.
# PANGEA_LIBVIRT_VM_KVM=1 asks for KVM where /dev/kvm is usable (a host whose KVM boots iPXE).
if [ "${PANGEA_LIBVIRT_VM_KVM:-0}" = 1 ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  TYPE=kvm CPU="<cpu mode='host-passthrough' check='none'/>"
else
  TYPE=qemu CPU="<cpu mode='maximum' check='none'/>"
fi
BIOS=
[ "$ON_REBOOT" = restart ] || BIOS="<bios rebootTimeout='1000'/>"

if exists "$NAME"; then
  [ "$(state "$NAME")" = "shut off" ] || die "domain $NAME exists and is $(state "$NAME"): run '$0 undefine $NAME' first"
  out=$(virsh_ undefine "$NAME" 2>&1) || die "virsh undefine $NAME (to replace it): $out"
fi

# <qemu:commandline>: -nographic (with libvirt's -display none and -nodefaults it adds no device)
# makes SeaBIOS mirror its and iPXE's screen to the serial port, as in boot-vm.sh; without it
# LOGFILE shows only the kernel and init. The netdev is boot-vm.sh's, under another id.
XML=$(mktemp "${TMPDIR:-/tmp}/libvirt-vm.XXXXXX.xml")
trap 'rm -f "$XML"' EXIT
cat >"$XML" <<EOF
<domain type='$TYPE' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$NAME</name>
  <uuid>$UUID</uuid>
  <description>Pangea test VM (.ci/netboot/libvirt-vm.sh): network boot from http://10.0.2.100:$PORT/boot.ipxe = 127.0.0.1:$PORT</description>
  <memory unit='MiB'>1024</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='network'/>
    $BIOS
  </os>
  <features><acpi/></features>
  $CPU
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>$ON_REBOOT</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$(xml "$QEMU")</emulator>
    <controller type='usb' model='none'/>
    <interface type='user'>
      <mac address='$MAC'/>
      <model type='virtio'/>
      <alias name='ua-pangea-nic'/>
    </interface>
    <serial type='file'>
      <source path='$(xml "$LOG")'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-nographic'/>
    <qemu:arg value='-netdev'/>
    <qemu:arg value='user,id=pangea-net,restrict=on,bootfile=http://10.0.2.100:$PORT/boot.ipxe,guestfwd=tcp:10.0.2.100:$PORT-cmd:$(xml "$BUSYBOX") nc 127.0.0.1 $PORT'/>
  </qemu:commandline>
  <qemu:override>
    <qemu:device alias='ua-pangea-nic'>
      <qemu:frontend>
        <qemu:property name='netdev' type='string' value='pangea-net'/>
      </qemu:frontend>
    </qemu:device>
  </qemu:override>
</domain>
EOF
out=$(virsh_ define "$XML" 2>&1) || die "virsh define $NAME: $out"
echo "libvirt-vm: defined $NAME ($UUID, $TYPE, $(state "$NAME")): boots $MAC from http://10.0.2.100:$PORT/boot.ipxe -> 127.0.0.1:$PORT; console in $LOG"
