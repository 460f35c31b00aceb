#!/usr/bin/env bash
# Boots the node disk image that build.sh made, from disk (no iPXE), in the netboot kit's QEMU and
# times it from the serial console (host-side timestamps, seconds since QEMU started).
#
#   test-vm.sh ACCEL [plain|controlplane] [TIMEOUT_SECONDS (default 600)]
#     ACCEL: kvm or tcg
#     plain:        the image as built (standalone kubelet, no manifests)
#     fetch:        installer simulation: the guest downloads disk.img.gz (and /tmp/nodeimage/disk.img.zst
#                   if present) through a guestfwd (busybox nc, as .ci/netboot/boot-vm.sh) from a host
#                   python http.server, decompresses it to a second disk (vdb) and reports the times
#     controlplane: first writes into a copy of the root what Ignition would: a throwaway CA (openssl),
#                   static pods for etcd-lite, kube-apiserver, kube-controller-manager and
#                   kube-scheduler, their images in /var/lib/pangea/images, and a kubelet kubeconfig
#                   (client cert system:node:pangea-node), then waits for /readyz inside the VM.
# Writes to /tmp/nodeimage-run-ACCEL-MODE/ (console.log with timestamps). Needs root (loop mount).
# Env: PANGEA_NODEIMAGE_CACHE, PANGEA_NETBOOT_CACHE, NODE_SMP (default 2), NODE_MEM (default 2048),
#      NODE_DISK_GB (default 8), NODE_API_PORT (host port forwarded to the guest's 6443; default 16443).
set -euo pipefail
ACCEL=${1:?usage: test-vm.sh kvm|tcg [plain|controlplane] [TIMEOUT]}
MODE=${2:-plain}
TIMEOUT=${3:-600}
KIT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_ROOT=${PANGEA_NODEIMAGE_CACHE:-${HOME:-/root}/.cache/pangea-nodeimage}
IMG="$CACHE_ROOT/current"
QEMU=${PANGEA_NETBOOT_CACHE:-${HOME:-/root}/.cache/pangea-netboot}/qemu/usr/bin/qemu-system-x86_64
[ -f "$IMG/disk.img" ] || { echo "no $IMG/disk.img: run build.sh" >&2; exit 2; }
[ -x "$QEMU" ] || { echo "no $QEMU: run .ci/netboot/setup.sh" >&2; exit 2; }
RUN=/tmp/nodeimage-run-$ACCEL-$MODE
rm -rf "$RUN"; mkdir -p "$RUN"
SMP=${NODE_SMP:-2} MEM=${NODE_MEM:-2048} PORT=${NODE_API_PORT:-16443}

cp --sparse=always "$IMG/disk.img" "$RUN/disk.raw"
truncate -s "${NODE_DISK_GB:-8}G" "$RUN/disk.raw"

if [ "$MODE" = controlplane ]; then
  P="$RUN/pki"; mkdir -p "$P"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=pangea-test-ca" -keyout "$P/ca.key" -out "$P/ca.crt"
    cert() { # cert NAME SUBJECT EXT
      openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$P/$1.key" -out "$P/$1.csr"
      printf '%s\n' "$3" >"$P/$1.ext"
      openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 30 -extfile "$P/$1.ext" -out "$P/$1.crt"
    }
    cert apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,IP:10.0.2.15,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
    cert admin "/O=system:masters/CN=admin" "extendedKeyUsage=clientAuth"
    cert kcm "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
    cert scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
    cert kubelet "/O=system:nodes/CN=system:node:pangea-node" "extendedKeyUsage=clientAuth"
    openssl genrsa -out "$P/sa.key" 2048 && openssl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub"
  } >"$RUN/pki.log" 2>&1
  kubeconfig() { # kubeconfig NAME -> text with embedded certs
    cat <<EOF
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: "$(base64 -w0 "$P/ca.crt")"}}]
users: [{name: u, user: {client-certificate-data: "$(base64 -w0 "$P/$1.crt")", client-key-data: "$(base64 -w0 "$P/$1.key")"}}]
contexts: [{name: c, context: {cluster: local, user: u}}]
current-context: c
EOF
  }
  M="$RUN/mnt"; mkdir -p "$M"
  OFF=$(sfdisk -J "$RUN/disk.raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][1]["start"]*512)')
  mount -o loop,offset="$OFF" "$RUN/disk.raw" "$M"
  trap 'umount "$M" 2>/dev/null || true' EXIT
  K="$M/etc/kubernetes"
  mkdir -p "$K/pki"
  cp "$P"/{ca.crt,ca.key,apiserver.crt,apiserver.key,sa.key,sa.pub} "$K/pki/"
  kubeconfig kcm >"$K/controller-manager.conf"
  kubeconfig scheduler >"$K/scheduler.conf"
  kubeconfig kubelet >"$K/kubelet.conf"
  kubeconfig admin >"$RUN/admin.conf"; sed -i "s#127.0.0.1:6443#127.0.0.1:$PORT#" "$RUN/admin.conf"
  cp "$IMG/images/"{etcd,kube-apiserver,kube-controller-manager,kube-scheduler}.tar "$M/var/lib/pangea/images/"
  echo 'KUBELET_ARGS="--kubeconfig=/etc/kubernetes/kubelet.conf --node-ip=10.0.2.15"' >"$M/etc/default/kubelet"
  cat >>"$K/kubelet.yaml" <<'EOF'
# (test-vm.sh controlplane: the node registers with the local API server)
EOF
  pod() { # pod NAME IMAGE VOLUMES_YAML COMMAND_ARGS...
    local name=$1 image=$2 vols=$3; shift 3
    {
      printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: kube-system, labels: {component: %s}}\n' "$name" "$name"
      printf 'spec:\n  hostNetwork: true\n  priority: 2000001000\n  priorityClassName: system-node-critical\n  containers:\n  - name: %s\n    image: %s\n    imagePullPolicy: Never\n    command:\n' "$name" "$image"
      for a in "$@"; do printf '    - "%s"\n' "$a"; done
      printf '%s\n' "$vols"
    } >"$K/manifests/$name.yaml"
  }
  pod etcd registry.k8s.io/etcd:3.6-lite "    volumeMounts: [{name: data, mountPath: /var/lib/etcd}]
  volumes: [{name: data, hostPath: {path: /var/lib/etcd, type: DirectoryOrCreate}}]" \
    /usr/local/bin/etcd --name=node --data-dir=/var/lib/etcd --listen-client-urls=http://127.0.0.1:2379 \
    --advertise-client-urls=http://127.0.0.1:2379 --listen-peer-urls=http://127.0.0.1:2380 \
    --initial-advertise-peer-urls=http://127.0.0.1:2380 --initial-cluster=node=http://127.0.0.1:2380 --listen-metrics-urls=
  KV="    volumeMounts: [{name: k8s, mountPath: /etc/kubernetes, readOnly: true}]
  volumes: [{name: k8s, hostPath: {path: /etc/kubernetes, type: Directory}}]"
  pod kube-apiserver registry.k8s.io/kube-apiserver:v1.36.2 "$KV" \
    /usr/local/bin/kube-apiserver --etcd-servers=http://127.0.0.1:2379 --secure-port=6443 --advertise-address=10.0.2.15 \
    --tls-cert-file=/etc/kubernetes/pki/apiserver.crt --tls-private-key-file=/etc/kubernetes/pki/apiserver.key \
    --client-ca-file=/etc/kubernetes/pki/ca.crt --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file=/etc/kubernetes/pki/sa.pub --service-account-signing-key-file=/etc/kubernetes/pki/sa.key \
    --service-cluster-ip-range=10.96.0.0/16 --authorization-mode=Node,RBAC --enable-priority-and-fairness=false \
    --kubelet-preferred-address-types=InternalIP
  pod kube-controller-manager registry.k8s.io/kube-controller-manager:v1.36.2 "$KV" \
    /usr/local/bin/kube-controller-manager --kubeconfig=/etc/kubernetes/controller-manager.conf \
    --authentication-kubeconfig=/etc/kubernetes/controller-manager.conf --authorization-kubeconfig=/etc/kubernetes/controller-manager.conf \
    --root-ca-file=/etc/kubernetes/pki/ca.crt --service-account-private-key-file=/etc/kubernetes/pki/sa.key \
    --cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt --cluster-signing-key-file=/etc/kubernetes/pki/ca.key \
    --use-service-account-credentials=true --leader-elect=false --bind-address=127.0.0.1
  pod kube-scheduler registry.k8s.io/kube-scheduler:v1.36.2 "$KV" \
    /usr/local/bin/kube-scheduler --kubeconfig=/etc/kubernetes/scheduler.conf \
    --authentication-kubeconfig=/etc/kubernetes/scheduler.conf --authorization-kubeconfig=/etc/kubernetes/scheduler.conf \
    --leader-elect=false --bind-address=127.0.0.1
  sync; umount "$M"; trap - EXIT
fi

EXTRA=()
NETX=
if [ "$MODE" = fetch ]; then
  # Installer simulation: the guest downloads the image through a restricted user network's guestfwd
  # (busybox nc, as in .ci/netboot/boot-vm.sh) from a host HTTP server, decompresses it and writes it
  # to a second virtio disk (vdb), as .gz and as .zst (if /tmp/nodeimage/disk.img.zst exists).
  FPORT=${NODE_FETCH_PORT:-18080}
  mkdir -p "$RUN/www"
  ln -s "$IMG/disk.img.gz" "$RUN/www/disk.img.gz"
  [ -f /tmp/nodeimage/disk.img.zst ] && ln -s /tmp/nodeimage/disk.img.zst "$RUN/www/disk.img.zst"
  (cd "$RUN/www" && exec nice -n 19 python3 -m http.server -b 127.0.0.1 "$FPORT") >"$RUN/http.log" 2>&1 &
  HTTP_PID=$!
  trap 'kill $HTTP_PID 2>/dev/null || true' EXIT
  truncate -s 4G "$RUN/target.raw"
  EXTRA=(-drive "file=$RUN/target.raw,format=raw,if=virtio,cache=unsafe")
  NETX=",guestfwd=tcp:10.0.2.100:$FPORT-cmd:$(command -v busybox) nc 127.0.0.1 $FPORT"
  M="$RUN/mnt"; mkdir -p "$M"
  OFF=$(sfdisk -J "$RUN/disk.raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][1]["start"]*512)')
  mount -o loop,offset="$OFF" "$RUN/disk.raw" "$M"
  [ -d "$M/usr/local/bin" ] && [ -d "$M/etc/systemd/system" ] || { umount "$M"; echo "mount failed" >&2; exit 1; }
  sed "s/@FPORT@/$FPORT/" >"$M/usr/local/bin/fetch-test" <<'GUEST'
#!/bin/sh
say() { echo "PANGEA-NODE: [$(cut -d' ' -f1 /proc/uptime)s] $*" >/dev/console; }
i=0
until ip -4 addr show scope global | grep -q inet; do
  i=$((i + 1)); sleep 1
  if [ $i -eq 60 ]; then
    say "no IPv4 address after 60 s:"; { ip -br a; ip route; networkctl --no-pager status -a 2>&1 | head -40; journalctl -b -u systemd-networkd --no-pager -o cat | tail -20; } 2>&1 | sed 's/^/PANGEA-NODE:   dbg| /' >/dev/console
  fi
done
say "ipv4: $(ip -4 -br addr show scope global | tr -s ' '); routes: $(ip route | tr '\n' ';')"
U=http://10.0.2.100:@FPORT@
for f in disk.img.gz disk.img.zst; do
  t0=$(date +%s.%N)
  r=$(curl -fsS -o /dev/null -w '%{size_download} bytes, %{speed_download} B/s' $U/$f 2>/tmp/curl.err) || { say "fetch $f failed: $(tr '\n' ' ' </tmp/curl.err)"; continue; }
  t1=$(date +%s.%N)
  say "download only $f: $r, $(echo "$t1 $t0" | awk '{printf "%.1f", $1-$2}')s"
  case $f in *.gz) d="gzip -dc" ;; *) d="zstd -dc" ;; esac
  t0=$(date +%s.%N)
  curl -fsS $U/$f | $d | dd of=/dev/vdb bs=1M status=none && sync
  t1=$(date +%s.%N)
  partx -u /dev/vdb 2>/dev/null || partx -a /dev/vdb 2>/dev/null
  say "install $f (curl | $d | dd of=/dev/vdb; sync): $(echo "$t1 $t0" | awk '{printf "%.1f", $1-$2}')s; vdb2 label: $(blkid -o value -s LABEL /dev/vdb2)"
done
GUEST
  chmod 0755 "$M/usr/local/bin/fetch-test"
  printf '[Unit]\nAfter=systemd-networkd.service pangea-images-import.service\nBefore=pangea-node-status.service\n[Service]\nType=oneshot\nExecStart=/usr/local/bin/fetch-test\nTimeoutStartSec=1800\n[Install]\nWantedBy=multi-user.target\n' >"$M/etc/systemd/system/fetch-test.service"
  ln -sf /etc/systemd/system/fetch-test.service "$M/etc/systemd/system/multi-user.target.wants/fetch-test.service"
  sync; umount "$M"
fi

if [ "$ACCEL" = kvm ]; then ACC=(-accel kvm -cpu host); else ACC=(-accel tcg -cpu max); fi
echo "test-vm: $ACCEL $MODE, smp $SMP, ${MEM} MiB, console in $RUN/console.log, timeout ${TIMEOUT}s"
start=$EPOCHREALTIME
# Every console line gets the host time since QEMU started.
( timeout -k 5 "$TIMEOUT" "$QEMU" "${ACC[@]}" -smp "$SMP" -m "$MEM" -nographic -no-reboot \
    -drive "file=$RUN/disk.raw,format=raw,if=virtio,cache=unsafe" \
    "${EXTRA[@]}" -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$PORT-:6443$NETX" -device virtio-net-pci,netdev=n0 \
    </dev/null 2>&1; echo "QEMU-EXIT rc=$?" ) | while IFS= read -r line; do
  now=$EPOCHREALTIME
  us=$(( ${now/./} - ${start/./} ))
  printf '%4d.%02d %s\n' $((us / 1000000)) $((us % 1000000 / 10000)) "${line//$'\r'/}"
done >"$RUN/console.log" &
reader=$!
# Stop QEMU once the guest has reported, or let timeout do it.
while kill -0 "$reader" 2>/dev/null; do
  if grep -q 'emulation failure\|Kernel panic' "$RUN/console.log" 2>/dev/null; then
    sleep 2; qpid=$(pgrep -f "file=$RUN/disk.raw" | head -n1 || true); [ -n "$qpid" ] && kill "$qpid"; break
  fi
  if grep -q 'PANGEA-NODE:.*status done' "$RUN/console.log" 2>/dev/null; then
    if [ "$MODE" = controlplane ]; then
      KUBECTL=$(/work/shared/tools/kube-tool kubectl 2>/dev/null || true)
      [ -n "$KUBECTL" ] && "$KUBECTL" --kubeconfig "$RUN/admin.conf" get nodes,pods -A -o wide >"$RUN/kubectl.txt" 2>&1 || true
      [ -n "$KUBECTL" ] && "$KUBECTL" --kubeconfig "$RUN/admin.conf" -n kube-system logs --previous --tail=8 kube-controller-manager-pangea-node >>"$RUN/kubectl.txt" 2>&1 || true
    fi
    qpid=$(pgrep -f "file=$RUN/disk.raw" | head -n1 || true)
    [ -n "$qpid" ] && kill "$qpid"
    break
  fi
  sleep 1
done
wait "$reader" || true
grep -aE 'PANGEA-NODE:|Reached target|Startup finished|QEMU-EXIT|Kernel panic|emulation failure|SYSLINUX|Booting|Linux version' "$RUN/console.log" | head -n 60
[ -f "$RUN/kubectl.txt" ] && cat "$RUN/kubectl.txt"
exit 0
