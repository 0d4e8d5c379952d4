#!/usr/bin/env bash
# The main job: align a hallucination judge on 20 real HaluEval examples and judge 20 held-out ones,
# printing agreement with the human labels before and after. Needs a chat model: see README.
# MEMALIGN_MODEL=local runs a tiny model in process: only then is llama.cpp compiled (the local-llm extra).
# Only what the main job uses: no test extras; no torch when the embeddings are hosted or fake
# (MEMALIGN_EMBEDDINGS set), the local MiniLM otherwise.
MEMALIGN_WANTED_EXTRAS="local"
[[ -n "${MEMALIGN_EMBEDDINGS:-}" ]] && MEMALIGN_WANTED_EXTRAS="core"
[[ "${MEMALIGN_MODEL:-}" == "local" ]] && MEMALIGN_WANTED_EXTRAS="${MEMALIGN_WANTED_EXTRAS},local-llm"
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
exec "$VENV/bin/python" examples/quickstart.py "$@"
