#!/usr/bin/env bash
# The main job: align a hallucination judge on 20 real HaluEval examples and judge 20 held-out ones,
# printing agreement with the human labels before and after. Needs a chat model: see README.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
exec "$VENV/bin/python" examples/quickstart.py "$@"
