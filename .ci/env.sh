# Shared by .ci/setup, .ci/serve and .ci/test: where things live, and PATH for the tools.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
# One build cache outside the clone, so fresh clones (CI) reuse earlier builds; still works empty.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pangea-target}"
export PATH="$HOME/.cargo/bin:$ROOT/end2end/node_modules/.bin:$PATH"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
