#!/usr/bin/env bash
# Installs the pinned moto server into target/moto-venv (once) and starts it on
# 127.0.0.1. Prints the endpoint. Used by .ci/run; usable by hand:
#   eval "$(bash scripts/moto.sh start)"   # exports SWITCHBOARD_TEST_MOTO, MOTO_PID
#   bash scripts/moto.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION="5.2.5"
VENV="target/moto-venv"

install() {
  if [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c "import moto,sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

case "${1:-start}" in
  install) install ;;
  start)
    install
    port="${MOTO_PORT:-$(free_port)}"
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
        echo "export SWITCHBOARD_TEST_MOTO=http://127.0.0.1:$port MOTO_PID=$pid"
        exit 0
      fi
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "moto server exited; see target/moto.log" >&2
        exit 1
      fi
      sleep 0.2
    done
    echo "moto server did not become ready within 20 s; see target/moto.log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
    ;;
  stop)
    if [ -n "${MOTO_PID:-}" ]; then kill "$MOTO_PID" 2>/dev/null || true; fi
    ;;
  *) echo "usage: scripts/moto.sh [install|start|stop]" >&2; exit 2 ;;
esac
