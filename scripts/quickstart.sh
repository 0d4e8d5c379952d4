#!/usr/bin/env bash
# The main job: align a hallucination judge on 20 real HaluEval examples and judge 20 held-out ones,
# printing agreement with the human labels before and after. Needs a chat model: see README.
# MEMALIGN_MODEL=local runs a tiny model in process: only then is llama.cpp compiled (the local-llm extra).
MEMALIGN_WANTED_EXTRAS="local"
[[ "${MEMALIGN_MODEL:-}" == "local" ]] && MEMALIGN_WANTED_EXTRAS="local,local-llm"
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
exec "$VENV/bin/python" examples/quickstart.py "$@"
