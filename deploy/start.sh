#!/usr/bin/env bash
# Start the team stack on loopback: PostgreSQL, a shared sandbox, N replicas, nginx. Ctrl-C stops it.
#   deploy/start.sh [--replicas 3] [--port 8800] [--dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m deploy up "$@"
