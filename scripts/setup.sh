#!/usr/bin/env bash
# Installs what building and testing model-compose needs, and skips whatever is already there:
# the wasm32 target, cargo-leptos, wasm-bindgen-cli (the version Cargo.lock resolves),
# wasm-opt (npm's binaryen, never Debian's: it breaks hydration), Debian's Chromium and
# PostgreSQL, the Python MCP client, and the npm packages of end2end/. Safe to run again and again; `make` runs it before every build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${TOOLS_DIR:-$ROOT/.tools}"
CARGO_LEPTOS_VERSION="0.3.10"
BINARYEN_VERSION="132.0.0"
export PATH="$TOOLS_DIR/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
skip() { printf '    %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "error: '$*' needs root (no sudo found)" >&2; exit 1
  fi
}

# The wasm-bindgen version Cargo.lock resolves; the CLI must be exactly this version.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  skip "wasm32-unknown-unknown target: installed"
else
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(cargo leptos --version 2>/dev/null || true)" = "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
  skip "cargo-leptos $CARGO_LEPTOS_VERSION: installed"
else
  step "installing cargo-leptos $CARGO_LEPTOS_VERSION (a few minutes, once per machine)"
  # cargo-leptos only orchestrates the build, so its speed hardly matters; its own release
  # profile (fat LTO, one codegen unit) made this install take ~13 minutes. Build it without
  # optimisation, LTO or debug info instead.
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=off \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_INCREMENTAL=false \
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads
fi

WBG_VERSION="$(wasm_bindgen_version)"
if [ -z "$WBG_VERSION" ]; then
  echo "error: no wasm-bindgen in Cargo.lock" >&2; exit 1
fi
if [ "$(wasm-bindgen --version 2>/dev/null || true)" = "wasm-bindgen $WBG_VERSION" ]; then
  skip "wasm-bindgen-cli $WBG_VERSION: installed"
else
  step "installing wasm-bindgen-cli $WBG_VERSION (about 2 minutes)"
  # Not --locked: its lockfile pins a crate version that the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WBG_VERSION" --force
fi

if "$TOOLS_DIR/node_modules/.bin/wasm-opt" --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
  skip "wasm-opt (binaryen $BINARYEN_VERSION from npm): installed"
else
  step "installing wasm-opt from npm's binaryen@$BINARYEN_VERSION into $TOOLS_DIR"
  mkdir -p "$TOOLS_DIR"
  npm install --prefix "$TOOLS_DIR" --no-audit --no-fund "binaryen@$BINARYEN_VERSION"
fi

if [ -x /usr/bin/chromium ]; then
  skip "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo installed)"
else
  step "installing Debian's chromium"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

# The PostgreSQL tests start a server of their own from Debian's binaries.
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  skip "postgresql: $(ls /usr/lib/postgresql | sort -n | tail -1) installed"
else
  step "installing Debian's postgresql (the tests start their own server)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi

# A delay until a time reads IANA time zones (Europe/Paris) from the system's database.
if [ -f /usr/share/zoneinfo/Europe/Paris ]; then
  skip "tzdata: installed"
else
  step "installing Debian's tzdata (the time zones a delay until a time reads)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tzdata
fi

# examples/agent-tools' calculator runs bc (its test too).
if command -v bc >/dev/null; then
  skip "bc: installed"
else
  step "installing Debian's bc (the agent-tools example's calculator)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc
fi

# The MCP server is tested with the official Python client (PyPI's `mcp`), in a venv of its own.
MCP_PY_VERSION="1.30.0"
if [ -x "$TOOLS_DIR/python/bin/python" ] && "$TOOLS_DIR/python/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '$MCP_PY_VERSION')" 2>/dev/null; then
  skip "python mcp $MCP_PY_VERSION: installed"
else
  step "installing the Python MCP client (mcp $MCP_PY_VERSION) into $TOOLS_DIR/python"
  if ! python3 -m venv --help >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  fi
  python3 -m venv "$TOOLS_DIR/python"
  "$TOOLS_DIR/python/bin/pip" install --quiet "mcp==$MCP_PY_VERSION"
fi

# npm ci only when the lockfile changed since the last install.
E2E="$ROOT/end2end"
if [ -f "$E2E/node_modules/.package-lock.json" ] \
  && [ "$E2E/node_modules/.package-lock.json" -nt "$E2E/package-lock.json" ]; then
  skip "end2end npm packages: installed"
else
  step "installing the end2end npm packages (npm ci)"
  (cd "$E2E" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
