#!/usr/bin/env bash
# The test suite: offline, with fake chat models and the real local stores, embedding model, LangGraph
# server and (when the machine has one) a throwaway PostgreSQL for the Postgres checkpointer.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
source "$ROOT/scripts/_postgres.sh"
[[ -n "${MEMALIGN_TEST_POSTGRES_URL:-}" ]] || start_test_postgres
"$VENV/bin/python" -m pytest "$@"
