#!/usr/bin/env bash
# The test suite: offline, with fake chat models and the real local stores, embedding model, LangGraph
# server and (when the machine has one) a throwaway PostgreSQL for the Postgres checkpointer.
# The real-model tier needs the local-llm extra (it compiles llama.cpp); MEMALIGN_SKIP_REAL_MODEL=1 skips
# both the tier and the extra.
if [[ "${MEMALIGN_SKIP_REAL_MODEL:-}" == "1" ]]; then
  MEMALIGN_WANTED_EXTRAS="local,test"
else
  MEMALIGN_WANTED_EXTRAS="local,test,local-llm"
fi
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
source "$ROOT/scripts/_postgres.sh"
[[ -n "${MEMALIGN_TEST_POSTGRES_URL:-}" ]] || start_test_postgres
"$VENV/bin/python" -m pytest "$@"
