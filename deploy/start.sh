#!/usr/bin/env bash
# Start the team stack on loopback: PostgreSQL, a shared sandbox, N replicas, nginx. Ctrl-C stops it.
#   deploy/start.sh [--team [--proxy] [--people 50]] [--replicas 3] [--port 8800] [--dir DIR]
#   --team: each person signs in (a stand-in identity provider; tokens in DIR/tokens.json), replicas
#   run `pcref-mcp team` and call Partner Center on behalf of each person
#   --proxy: the replicas are also the OAuth authorization server (Claude.ai, ChatGPT), at nginx's URL
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m deploy up "$@"
