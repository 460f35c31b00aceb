#!/usr/bin/env bash
# Runs terraform_client.py against a real `pangea serve`: makes a CA, a server certificate for
# 127.0.0.1/localhost, a client certificate (CN terraform) and one from a rogue CA with openssl,
# starts Pangea on free ports with a fresh SQLite database, and runs the three scenarios:
# terraform; expect-refused without a client certificate; expect-refused with the rogue one.
#   end2end/grpc/live.sh [PANGEA_BINARY]   (default: $CARGO_TARGET_DIR/debug/pangea)
# Keeps the work directory (certificates, server log, JSON outputs) when KEEP=1.
set -euo pipefail
source "$(dirname "$0")/../../.ci/env.sh"
bin="${1:-$CARGO_TARGET_DIR/debug/pangea}"
client="$ROOT/end2end/grpc/terraform_client.py"
py="${PANGEA_PY_VENV:-$HOME/.cache/pangea-venv}/bin/python"
[ -x "$py" ] || py=python3

say() { printf '\n==> %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d /tmp/pangea-grpc-live.XXXXXX)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

say "Certificates in $work/tls"
mkdir -p "$work/tls" && cd "$work/tls"
ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=$1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
issue() { # CA FILE CN EXTENSIONS
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$3" -keyout "$2.key" -out "$2.csr" 2>/dev/null
  printf '%b\n' "$4" >"$2.ext"
  openssl x509 -req -in "$2.csr" -CA "$1.pem" -CAkey "$1.key" -CAcreateserial -days 2 -extfile "$2.ext" -out "$2.pem" 2>/dev/null
}
ca ca
ca rogue-ca
issue ca server pangea 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth'
issue ca client terraform 'extendedKeyUsage=clientAuth'
issue rogue-ca rogue terraform 'extendedKeyUsage=clientAuth'
cd "$work"

# The gRPC flags are --grpc-listen/--grpc-cert/--grpc-key/--grpc-client-ca in older builds and
# --rpc-listen/--rpc-cert-file/--rpc-key-file/--rpc-ca-file in newer ones: use what --help shows.
help=$("$bin" serve --help)
rpc_port=$(free_port)
if grep -q -- '--rpc-listen' <<<"$help"; then
  rpc_flags=(--rpc-listen "127.0.0.1:$rpc_port" --rpc-cert-file tls/server.pem --rpc-key-file tls/server.key --rpc-ca-file tls/ca.pem)
elif grep -q -- '--grpc-listen' <<<"$help"; then
  rpc_flags=(--grpc-listen "127.0.0.1:$rpc_port" --grpc-cert tls/server.pem --grpc-key tls/server.key --grpc-client-ca tls/ca.pem)
else
  echo "$bin serve --help shows no gRPC listener flag" >&2
  exit 2
fi

say "Starting $bin (gRPC on 127.0.0.1:$rpc_port)"
# A certificate alone gives no role: the client's name is bound to one, as an admin would.
"$bin" access bind cert:terraform --user --role operator \
  --data-dir "$work/data" --database-url "sqlite://$work/pangea.db?mode=rwc" >/dev/null
"$bin" serve --data-dir "$work/data" --database-url "sqlite://$work/pangea.db?mode=rwc" \
  --listen "127.0.0.1:$(free_port)" --boot-listen "127.0.0.1:$(free_port)" --site-root "$work/site" \
  "${rpc_flags[@]}" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 120); do
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log" >&2; echo "pangea exited" >&2; exit 1; fi
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $rpc_port), 1)" 2>/dev/null && break
  sleep 0.5
done

common=(--endpoint "127.0.0.1:$rpc_port" --ca-file tls/ca.pem)
say "terraform"
"$py" "$client" --scenario terraform "${common[@]}" --cert-file tls/client.pem --key-file tls/client.key \
  --prefix "live-$$" | tee terraform.json
say "expect-refused: no client certificate"
"$py" "$client" --scenario expect-refused "${common[@]}" | tee refused-anonymous.json
say "expect-refused: a certificate from another CA"
"$py" "$client" --scenario expect-refused "${common[@]}" --cert-file tls/rogue.pem --key-file tls/rogue.key \
  | tee refused-rogue.json
say "All three scenarios behaved as expected"
