#!/usr/bin/env bash
# Installs (once) the Iceberg REST catalog server the REST tests start (rustberg, in Rust).
#   scripts/rest-catalog.sh install   build rustberg into ~/.cargo/bin unless it is there
#   scripts/rest-catalog.sh path      print its path
set -euo pipefail

RUSTBERG_VERSION=0.3.0

rustberg_bin() {
  command -v rustberg 2>/dev/null || { [ -x "$HOME/.cargo/bin/rustberg" ] && echo "$HOME/.cargo/bin/rustberg"; } || true
}

install() {
  local bin
  bin=$(rustberg_bin)
  if [ -n "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$RUSTBERG_VERSION"; then
    return 0
  fi
  echo "installing rustberg $RUSTBERG_VERSION (an Iceberg REST catalog; ~25 minutes the first time)..." >&2
  cargo install rustberg --version "$RUSTBERG_VERSION" --locked --no-default-features --features cli,storage-s3 >&2
}

case "${1:-}" in
  install) install ;;
  path) rustberg_bin ;;
  *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
