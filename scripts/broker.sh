#!/usr/bin/env bash
# Installs (once) and starts/stops the local Kafka-protocol broker (tansu).
#   scripts/broker.sh install       build tansu into ~/.cargo/bin unless it is there
#   scripts/broker.sh start [port]  start it on 127.0.0.1:<port> (default 9092) unless running
#   scripts/broker.sh stop          stop the broker this script started
set -euo pipefail

TANSU_VERSION=0.6.0
STATE_DIR="${INGOT_STATE_DIR:-$HOME/.cache/ingot}"
mkdir -p "$STATE_DIR"

tansu_bin() {
  command -v tansu 2>/dev/null || { [ -x "$HOME/.cargo/bin/tansu" ] && echo "$HOME/.cargo/bin/tansu"; } || true
}

install() {
  local bin
  bin=$(tansu_bin)
  if [ -n "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return 0
  fi
  echo "installing tansu $TANSU_VERSION (a Kafka-compatible broker; ~15 minutes the first time)..." >&2
  cargo install tansu --version "$TANSU_VERSION" --locked --features libsql,dynostore >&2
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && exec 3>&- 3<&-
}

start() {
  local port="${1:-9092}"
  if port_open "$port"; then
    echo "a broker is already listening on 127.0.0.1:$port" >&2
    return 0
  fi
  install
  local dir="$STATE_DIR/broker-$port"
  mkdir -p "$dir"
  (
    cd "$dir"
    # sqlite storage survives restarts of the broker; the file lives in $dir.
    nohup "$(tansu_bin)" broker \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine "sqlite://tansu.db" >broker.log 2>&1 &
    echo $! >broker.pid
  )
  for _ in $(seq 1 100); do
    port_open "$port" && { echo "broker listening on 127.0.0.1:$port (logs: $dir/broker.log)" >&2; return 0; }
    sleep 0.1
  done
  echo "broker did not start; see $dir/broker.log" >&2
  return 1
}

stop() {
  local port="${1:-9092}" pidfile="$STATE_DIR/broker-${1:-9092}/broker.pid"
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-9092}" ;;
  stop) stop "${2:-9092}" ;;
  path) install; tansu_bin ;;
  *) echo "usage: $0 install|start [port]|stop [port]|path" >&2; exit 2 ;;
esac
