#!/usr/bin/env bash
# Pangea node OS image kit (PROTOTYPE): builds the "node OS" that CI installs on network-booted VMs,
# a stand-in for Flatcar: Debian 12 (bookworm) with systemd, Debian's kernel, containerd 1.6, runc,
# the CNI plugins and kubelet v1.36.2, plus OCI image archives of pause and the control plane.
#
# usage: .ci/nodeimage/build.sh          (as root: debootstrap + chroot; no Docker, no loop mounts)
#   env: PANGEA_NODEIMAGE_CACHE  (default ~/.cache/pangea-nodeimage)
#        PANGEA_TEST_KUBE_BIN    (default <repo>/../shared/tools: kubelet.gz, pause, kube-apiserver, ...)
#        PANGEA_NODEIMAGE_MIRROR (default: the Debian mirror in /etc/apt/sources.list*)
#
# Output, in $CACHE/<key>/ (and $CACHE/current -> <key>), key = sha256 of this script, the kube
# binaries, the mirror and the apt candidate versions of the packages below:
#   disk.img        raw BIOS/MBR disk: p1 FAT "PBOOT" (syslinux, vmlinuz, initrd), p2 ext4 "pangea-root".
#                   Sparse; the root partition is grown to the whole disk at first boot.
#   disk.img.gz     the same, gzip (what an installer downloads: `gunzip -c | dd of=/dev/vda`)
#   images/*.tar    OCI archives (hand-made: tar + sha256sum): pause:3.10, kube-apiserver,
#                   kube-controller-manager, kube-scheduler (v1.36.2), etcd (etcd-lite, tag 3.6-lite)
#   versions.txt, sizes.txt, build.log
# A second run with unchanged inputs exits at once ("reused").
#
# Node contract (what Ignition may write on the installed root):
#   /etc/kubernetes/kubelet.yaml        KubeletConfiguration (default: standalone, static pods only)
#   /etc/default/kubelet                KUBELET_ARGS="--kubeconfig=... --bootstrap-kubeconfig=..."
#   /etc/kubernetes/manifests/*.yaml    static pods (control plane)
#   /var/lib/pangea/images/*.tar        more OCI/docker archives; pangea-images-import.service imports
#                                       them (and the baked /usr/share/pangea/images/pause.tar) into
#                                       containerd's k8s.io namespace before kubelet.service starts
#   /etc/cni/net.d/*.conflist           replaces the default bridge config (10.244.0.0/24)
# The serial console gets "PANGEA-NODE: ..." lines (pangea-node-status.service) that CI can wait for.
#
# Why a raw MBR disk image (not a rootfs tarball): the installer only needs `gunzip | dd` (busybox),
# no mkfs/partitioning/bootloader tools in its initrd, as flatcar-install does. Built without loop
# devices or mounts: mke2fs -d fills the ext4, syslinux installs into the FAT image through mtools.
# BIOS boot only (SeaBIOS; no OVMF in the netboot kit).
#
# Facts measured on this host (2 cores, loaded; see test-vm.sh, which boots it from disk):
#   - /dev/kvm is kvm-pvm: SYSLINUX dies with "emulation failure" and a stock kernel given with
#     -kernel prints nothing; boot under TCG (-accel tcg -cpu max).
#   - QEMU's restricted user net (restrict=on) gives DHCP 10.0.2.15/24 but NO IPv4 default route;
#     kubelet then picks the IPv6 fec0:: address as InternalIP: set --node-ip (or a route) via Ignition.
#   - containerd 1.6 + kubelet 1.36: "Falling back to using cgroupDriver from kubelet config" (expected).
set -euo pipefail

KIT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$KIT/../.." && pwd)
CACHE_ROOT=${PANGEA_NODEIMAGE_CACHE:-${HOME:-/root}/.cache/pangea-nodeimage}
TOOLS=${PANGEA_TEST_KUBE_BIN:-$REPO/../shared/tools}
SUITE=bookworm
KUBE_VERSION=v1.36.2
PAUSE_TAG=3.10
ETCD_TAG=3.6-lite
# Installed (with --no-install-recommends) on top of debootstrap's minbase.
PACKAGES=(systemd systemd-sysv udev dbus kmod linux-image-amd64 initramfs-tools zstd
  containerd runc containernetworking-plugins iproute2 iptables nftables conntrack
  ca-certificates curl e2fsprogs fdisk util-linux procps iputils-ping)
HOST_PACKAGES=(debootstrap syslinux syslinux-common mtools dosfstools fdisk e2fsprogs pigz)
BOOT_MB=64

say() { printf '==> nodeimage: %s\n' "$*"; }
die() { printf 'nodeimage: ERROR: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and chroot)"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
missing=()
for p in "${HOST_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing host packages: ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian mirror the host uses (deb822 .sources or one-line format).
mirror() {
  [ -n "${PANGEA_NODEIMAGE_MIRROR:-}" ] && { echo "$PANGEA_NODEIMAGE_MIRROR"; return; }
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' | grep -v security | grep -m1 '/debian/*$' || true)
  [ -n "$m" ] || m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" && $3 == "'$SUITE'" {print $2; exit}')
  echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=$(mirror)
SECURITY_MIRROR=${MIRROR%/debian}/debian-security

for f in kubelet.gz kube-controller-manager.gz kube-scheduler.gz kube-apiserver etcd-lite pause kube-tool; do
  [ -e "$TOOLS/$f" ] || die "no $TOOLS/$f (set PANGEA_TEST_KUBE_BIN)"
done

KEY=$( {
  sha256sum "$KIT/build.sh" | cut -d' ' -f1
  (cd "$TOOLS" && sha256sum kubelet.gz kube-controller-manager.gz kube-scheduler.gz kube-apiserver etcd-lite pause)
  echo "mirror $MIRROR"
  apt-cache policy "${PACKAGES[@]}" 2>/dev/null | awk '/^[a-z0-9]/ {p=$1} /Candidate:/ {print p, $2}'
} | sha256sum | cut -c1-16)
OUT="$CACHE_ROOT/$KEY"
if [ -f "$OUT/stamp" ]; then
  ln -sfn "$KEY" "$CACHE_ROOT/current"
  say "reused $OUT ($(head -n1 "$OUT/versions.txt"))"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
flock 9
STAGE="$CACHE_ROOT/.staging-$KEY"
ROOT="$STAGE/rootfs"
rm -rf "$STAGE"
mkdir -p "$STAGE/images" "$STAGE/work"
LOG="$STAGE/build.log"
T0=$(date +%s)
phase() { say "$* (+$(($(date +%s) - T0))s)"; echo "[+$(($(date +%s) - T0))s] $*" >>"$LOG"; }

MOUNTS=()
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

# ---------------------------------------------------------------- OCI images (no Docker)
# mk_image FILE REF SRC_BINARY PATH_IN_IMAGE: a one-layer OCI archive with one static binary.
mk_image() {
  local file=$1 ref=$2 src=$3 dest=$4 w="$STAGE/work/img-$(basename "$1" .tar)"
  rm -rf "$w" && mkdir -p "$w/layer$(dirname "$dest")" "$w/layer/tmp" "$w/oci/blobs/sha256"
  install -m 0755 "$src" "$w/layer$dest"
  chmod 1777 "$w/layer/tmp"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C "$w/layer" -cf "$w/layer.tar" tmp "${dest#/}"
  local diffid; diffid=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
  pigz -n -6 -c "$w/layer.tar" >"$w/layer.tar.gz"
  local ldig lsize; ldig=$(sha256sum "$w/layer.tar.gz" | cut -d' ' -f1); lsize=$(stat -c %s "$w/layer.tar.gz")
  mv "$w/layer.tar.gz" "$w/oci/blobs/sha256/$ldig"
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["%s"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"pangea .ci/nodeimage/build.sh"}]}' \
    "$dest" "$diffid" >"$w/config.json"
  local cdig csize; cdig=$(sha256sum "$w/config.json" | cut -d' ' -f1); csize=$(stat -c %s "$w/config.json")
  mv "$w/config.json" "$w/oci/blobs/sha256/$cdig"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$cdig" "$csize" "$ldig" "$lsize" >"$w/manifest.json"
  local mdig msize; mdig=$(sha256sum "$w/manifest.json" | cut -d' ' -f1); msize=$(stat -c %s "$w/manifest.json")
  mv "$w/manifest.json" "$w/oci/blobs/sha256/$mdig"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$mdig" "$msize" "$ref" "${ref##*:}" >"$w/oci/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci/oci-layout"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C "$w/oci" -cf "$file" oci-layout index.json blobs
  rm -rf "$w"
  echo "image $ref $(basename "$file") manifest sha256:$mdig" >>"$STAGE/images.txt"
}

phase "OCI images"
KT() { "$TOOLS/kube-tool" "$1"; }
mk_image "$STAGE/images/pause.tar" "registry.k8s.io/pause:$PAUSE_TAG" "$TOOLS/pause" /pause
mk_image "$STAGE/images/kube-apiserver.tar" "registry.k8s.io/kube-apiserver:$KUBE_VERSION" "$TOOLS/kube-apiserver" /usr/local/bin/kube-apiserver
mk_image "$STAGE/images/kube-controller-manager.tar" "registry.k8s.io/kube-controller-manager:$KUBE_VERSION" "$(KT kube-controller-manager)" /usr/local/bin/kube-controller-manager
mk_image "$STAGE/images/kube-scheduler.tar" "registry.k8s.io/kube-scheduler:$KUBE_VERSION" "$(KT kube-scheduler)" /usr/local/bin/kube-scheduler
mk_image "$STAGE/images/etcd.tar" "registry.k8s.io/etcd:$ETCD_TAG" "$TOOLS/etcd-lite" /usr/local/bin/etcd

# ---------------------------------------------------------------- root filesystem
phase "debootstrap $SUITE minbase from $MIRROR"
debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >>"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; die "debootstrap failed (log: $LOG)"; }

for m in proc sys dev dev/pts; do
  case $m in
    proc) mount -t proc proc "$ROOT/proc" ;;
    sys) mount -t sysfs sysfs "$ROOT/sys" ;;
    *) mount --bind "/$m" "$ROOT/$m" ;;
  esac
  MOUNTS+=("$ROOT/$m")
done

cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
# Keep docs, man pages, locales and the kernel's desktop/wireless/media drivers out of the image.
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/pangea-excludes" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
path-exclude=/lib/modules/*/kernel/drivers/gpu/*
path-exclude=/lib/modules/*/kernel/drivers/media/*
path-exclude=/lib/modules/*/kernel/drivers/net/wireless/*
path-exclude=/lib/modules/*/kernel/drivers/infiniband/*
path-exclude=/lib/modules/*/kernel/drivers/staging/*
path-exclude=/lib/modules/*/kernel/drivers/bluetooth/*
path-exclude=/lib/modules/*/kernel/drivers/iio/*
path-exclude=/lib/modules/*/kernel/drivers/isdn/*
path-exclude=/lib/modules/*/kernel/drivers/net/can/*
path-exclude=/lib/modules/*/kernel/drivers/usb/serial/*
path-exclude=/lib/modules/*/kernel/drivers/usb/gadget/*
path-exclude=/lib/modules/*/kernel/drivers/hid/*
path-exclude=/lib/modules/*/kernel/drivers/input/touchscreen/*
path-exclude=/lib/modules/*/kernel/drivers/input/joystick/*
path-exclude=/lib/modules/*/kernel/sound/*
path-exclude=/lib/modules/*/kernel/net/wireless/*
path-exclude=/lib/modules/*/kernel/net/mac80211/*
path-exclude=/lib/modules/*/kernel/net/bluetooth/*
path-exclude=/lib/modules/*/kernel/fs/ocfs2/*
path-exclude=/lib/modules/*/kernel/fs/xfs/*
path-exclude=/lib/modules/*/kernel/fs/btrfs/*
path-exclude=/lib/modules/*/kernel/fs/gfs2/*
path-exclude=/lib/modules/*/kernel/fs/nfs*
path-exclude=/lib/modules/*/kernel/fs/ceph/*
path-exclude=/lib/modules/*/kernel/fs/smb/*
EOF
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
# The initramfs only needs to find an ext4 root on virtio/SATA/NVMe disks: a small list, not "most".
mkdir -p "$ROOT/etc/initramfs-tools/conf.d" "$ROOT/usr/share/initramfs-tools/modules.d"
printf 'MODULES=list\nCOMPRESS=zstd\nRESUME=none\n' >"$ROOT/etc/initramfs-tools/conf.d/pangea.conf"
printf '%s\n' virtio_pci virtio_blk virtio_scsi sd_mod ahci nvme ext4 crc32c_generic >"$ROOT/usr/share/initramfs-tools/modules.d/pangea.conf"

phase "apt-get install ${PACKAGES[*]}"
in_root apt-get update -q >>"$LOG" 2>&1
in_root apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold "${PACKAGES[@]}" >>"$LOG" 2>&1 \
  || { tail -n 30 "$LOG" >&2; die "apt-get install in the chroot failed (log: $LOG)"; }

# debootstrap's own packages came before the excludes: drop their docs, man pages and locales too.
find "$ROOT/usr/share/doc" -type f ! -name copyright -delete 2>/dev/null || true
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
rm -rf "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/*

phase "configuring the node"
install -m 0755 "$(KT kubelet)" "$ROOT/usr/bin/kubelet"
mkdir -p "$ROOT/usr/share/pangea/images" "$ROOT/var/lib/pangea/images" "$ROOT/etc/kubernetes/manifests" \
  "$ROOT/usr/libexec/pangea" "$ROOT/etc/cni/net.d" "$ROOT/etc/containerd" "$ROOT/etc/systemd/network" "$ROOT/var/lib/kubelet"
cp "$STAGE/images/pause.tar" "$ROOT/usr/share/pangea/images/pause.tar"

echo pangea-node >"$ROOT/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
printf '# written by Ignition on a real node\n' >"$ROOT/etc/resolv.conf"
printf 'LABEL=pangea-root / ext4 defaults,noatime 0 1\n' >"$ROOT/etc/fstab"
: >"$ROOT/etc/machine-id" # generated at first boot
ln -sf /usr/share/zoneinfo/Etc/UTC "$ROOT/etc/localtime"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n' >"$ROOT/etc/systemd/network/50-dhcp.network"
printf 'overlay\nbr_netfilter\n' >"$ROOT/etc/modules-load.d/kubernetes.conf"
printf 'net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\n' >"$ROOT/etc/sysctl.d/90-kubernetes.conf"

cat >"$ROOT/etc/containerd/config.toml" <<'EOF'
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
EOF
cat >"$ROOT/etc/cni/net.d/10-pangea-bridge.conflist" <<'EOF'
{
  "cniVersion": "1.0.0",
  "name": "pangea",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
EOF

cat >"$ROOT/etc/kubernetes/kubelet.yaml" <<'EOF'
# Default: standalone kubelet (static pods only). Ignition replaces this for a cluster node.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
staticPodPath: /etc/kubernetes/manifests
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
EOF
printf '# KUBELET_ARGS="--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"\nKUBELET_ARGS=\n' \
  >"$ROOT/etc/default/kubelet"
cat >"$ROOT/etc/systemd/system/kubelet.service" <<'EOF'
[Unit]
Description=kubelet (Kubernetes v1.36.2)
Wants=containerd.service pangea-images-import.service network-online.target
After=containerd.service pangea-images-import.service network-online.target

[Service]
EnvironmentFile=-/etc/default/kubelet
ExecStart=/usr/bin/kubelet --config=/etc/kubernetes/kubelet.yaml $KUBELET_ARGS
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
EOF

cat >"$ROOT/usr/libexec/pangea/import-images" <<'EOF'
#!/bin/sh
# Imports every image archive in /usr/share/pangea/images and /var/lib/pangea/images into
# containerd's k8s.io namespace once (a stamp per archive, keyed by its size and mtime).
set -eu
state=/var/lib/pangea/imported
mkdir -p "$state"
i=0
until ctr version >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -le 60 ] || { echo "containerd does not answer"; exit 1; }; sleep 0.5
done
for f in /usr/share/pangea/images/*.tar /var/lib/pangea/images/*.tar; do
  [ -f "$f" ] || continue
  id=$(printf '%s' "$f" | tr / _)
  stamp="$(stat -c '%s.%Y' "$f")"
  [ "$(cat "$state/$id" 2>/dev/null || true)" = "$stamp" ] && continue
  start=$(cut -d' ' -f1 /proc/uptime)
  ctr -n k8s.io images import "$f"
  echo "PANGEA-NODE: imported $f (uptime $start -> $(cut -d' ' -f1 /proc/uptime))" >/dev/console
  echo "$stamp" >"$state/$id"
done
EOF
chmod 0755 "$ROOT/usr/libexec/pangea/import-images"
cat >"$ROOT/etc/systemd/system/pangea-images-import.service" <<'EOF'
[Unit]
Description=Import Pangea's local container images into containerd (k8s.io)
Requires=containerd.service
After=containerd.service
Before=kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/libexec/pangea/import-images

[Install]
WantedBy=multi-user.target
EOF

# First boot: grow the root partition and its ext4 to the whole disk.
cat >"$ROOT/usr/libexec/pangea/grow-root" <<'EOF'
#!/bin/sh
set -eu
part=$(findmnt -n -o SOURCE /)
disk=/dev/$(lsblk -n -o PKNAME "$part")
num=$(cat "/sys/class/block/$(basename "$part")/partition")
echo ", +" | sfdisk --no-reread --no-tell-kernel -q -N "$num" "$disk" || true
partx -u -n "$num" "$disk" || true
resize2fs "$part"
mkdir -p /var/lib/pangea && touch /var/lib/pangea/grown
echo "PANGEA-NODE: root grown: $(df -h / | tail -n1)" >/dev/console
EOF
chmod 0755 "$ROOT/usr/libexec/pangea/grow-root"
cat >"$ROOT/etc/systemd/system/pangea-grow-root.service" <<'EOF'
[Unit]
Description=Grow the root partition to the disk (first boot)
ConditionPathExists=!/var/lib/pangea/grown
After=systemd-remount-fs.service
Before=containerd.service

[Service]
Type=oneshot
ExecStart=/usr/libexec/pangea/grow-root

[Install]
WantedBy=multi-user.target
EOF

# Status markers on the console for CI (and a human reading the serial log).
cat >"$ROOT/usr/libexec/pangea/node-status" <<'EOF'
#!/bin/sh
say() { echo "PANGEA-NODE: [$(cut -d' ' -f1 /proc/uptime)s] $*" >/dev/console; }
say "systemd: $(systemctl is-system-running 2>&1); $(systemd-analyze time 2>/dev/null | head -n1)"
say "cgroup fs: $(stat -fc %T /sys/fs/cgroup); controllers: $(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)"
say "containerd: $(systemctl is-active containerd); images-import: $(systemctl is-active pangea-images-import)"
say "images: $(ctr -n k8s.io images ls -q 2>&1 | tr '\n' ' ')"
i=0
while [ $i -lt 120 ]; do
  [ "$(systemctl is-active kubelet)" = active ] && [ -d /var/lib/kubelet/pods ] && break
  i=$((i + 1)); sleep 1
done
sleep 10 # (a kubelet that dies at once shows up in NRestarts)
say "kubelet: $(systemctl is-active kubelet), restarts $(systemctl show -p NRestarts --value kubelet); pods dir: $(test -d /var/lib/kubelet/pods && echo yes || echo no)"
journalctl -u kubelet -b --no-pager -o cat 2>/dev/null | grep -E 'Container runtime initialized|Validated CRI|Falling back|Starting kubelet|E[0-9]{4} ' | head -n 6 | cut -c1-220 | sed 's/^/PANGEA-NODE:   kubelet| /' >/dev/console
say "failed units: $(systemctl --failed --no-legend --plain 2>/dev/null | awk '{print $1}' | tr '\n' ' ')"
if [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ]; then
  i=0
  while [ $i -lt 600 ]; do
    out=$(curl -sk --max-time 3 https://127.0.0.1:6443/readyz 2>/dev/null) && [ "$out" = ok ] && break
    i=$((i + 1)); sleep 1
  done
  say "apiserver /readyz: ${out:-no answer}"
  say "tasks: $(ctr -n k8s.io tasks ls 2>/dev/null | tail -n +2 | awk '{print $1"="$3}' | tr '\n' ' ')"
fi
say "status done"
EOF
chmod 0755 "$ROOT/usr/libexec/pangea/node-status"
cat >"$ROOT/etc/systemd/system/pangea-node-status.service" <<'EOF'
[Unit]
Description=Report node status on the console (PANGEA-NODE: lines)
After=kubelet.service pangea-images-import.service multi-user.target

[Service]
Type=simple
ExecStart=/usr/libexec/pangea/node-status

[Install]
WantedBy=multi-user.target
EOF

in_root systemctl enable systemd-networkd.service containerd.service kubelet.service \
  pangea-images-import.service pangea-grow-root.service pangea-node-status.service >>"$LOG" 2>&1
in_root systemctl mask systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer e2scrub_reap.service fstrim.timer >>"$LOG" 2>&1 || true
in_root passwd -l root >>"$LOG" 2>&1

phase "cleaning the root"
rm -f "$ROOT/usr/sbin/policy-rc.d"
in_root apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/log/*.log "$ROOT"/var/cache/debconf/*-old "$ROOT"/tmp/*
cleanup; MOUNTS=()
KVER=$(basename "$(ls -d "$ROOT"/lib/modules/* | head -n1)")
mkdir -p "$STAGE/boot"
mv "$ROOT/boot/vmlinuz-$KVER" "$STAGE/boot/vmlinuz"
mv "$ROOT/boot/initrd.img-$KVER" "$STAGE/boot/initrd.img"
rm -f "$ROOT"/vmlinuz* "$ROOT"/initrd.img* "$ROOT"/boot/System.map-* # (config-* stays: kubelet reads it)

{
  echo "Debian $SUITE node image, kernel $KVER, kubelet $KUBE_VERSION, $(in_root dpkg-query -W -f='${Package} ${Version}\n' containerd runc containernetworking-plugins systemd | tr '\n' ',' | sed 's/,$//; s/,/, /g')"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $MIRROR"
  in_root dpkg-query -W -f='${Package} ${Version}\n'
} >"$STAGE/versions.txt"
cat "$STAGE/images.txt" >>"$STAGE/versions.txt"

# ---------------------------------------------------------------- disk image (no loop device)
phase "disk image"
ROOT_USED_MB=$(du -sxm "$ROOT" | cut -f1)
ROOT_MB=$(( (ROOT_USED_MB * 12 / 10 + 256 + 63) / 64 * 64 ))
mke2fs -q -t ext4 -L pangea-root -d "$ROOT" -m 1 "$STAGE/root.ext4" "${ROOT_MB}M"
rm -f "$STAGE/boot.fat"
mkfs.vfat -n PBOOT -C "$STAGE/boot.fat" $((BOOT_MB * 1024)) >/dev/null
cat >"$STAGE/syslinux.cfg" <<'EOF'
DEFAULT pangea
PROMPT 0
TIMEOUT 1
LABEL pangea
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND root=LABEL=pangea-root rw console=tty0 console=ttyS0,115200 panic=10
EOF
mcopy -i "$STAGE/boot.fat" "$STAGE/boot/vmlinuz" "$STAGE/boot/initrd.img" "$STAGE/syslinux.cfg" ::/
syslinux --install "$STAGE/boot.fat"
DISK="$STAGE/disk.img"
rm -f "$DISK"
truncate -s $(((1 + BOOT_MB + ROOT_MB) * 1024 * 1024)) "$DISK"
printf 'label: dos\nstart=2048, size=%dMiB, type=e, bootable\nsize=%dMiB, type=83\n' "$BOOT_MB" "$ROOT_MB" | sfdisk -q "$DISK"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$DISK" bs=440 count=1 conv=notrunc status=none
dd if="$STAGE/boot.fat" of="$DISK" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$STAGE/root.ext4" of="$DISK" bs=1M seek=$((1 + BOOT_MB)) conv=notrunc,sparse status=none
rm -f "$STAGE/boot.fat" "$STAGE/root.ext4" "$STAGE/syslinux.cfg"
phase "compressing"
pigz -6 -k "$DISK"

rm -rf "$ROOT" "$STAGE/work" "$STAGE/boot"
{
  echo "root used ${ROOT_USED_MB} MiB, root partition ${ROOT_MB} MiB, boot partition ${BOOT_MB} MiB"
  (cd "$STAGE" && du -h --apparent-size disk.img disk.img.gz images/*.tar && echo "disk.img allocated: $(du -h disk.img | cut -f1)")
} >"$STAGE/sizes.txt"
phase "done in $(($(date +%s) - T0))s"
rm -rf "$OUT"
mv "$STAGE" "$OUT"
# Older builds (other keys) are about 1.5 GB each: keep only this one.
find "$CACHE_ROOT" -mindepth 1 -maxdepth 1 -type d ! -name "$KEY" -exec rm -rf {} +
echo "$KEY" >"$OUT/stamp"
ln -sfn "$KEY" "$CACHE_ROOT/current"
say "built $OUT:"
sed 's/^/    /' "$OUT/sizes.txt"
