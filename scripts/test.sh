#!/usr/bin/env bash
# The test suite: offline, with fake chat models and the real local stores and embedding model.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
exec "$VENV/bin/python" -m pytest "$@"
