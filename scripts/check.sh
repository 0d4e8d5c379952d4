#!/usr/bin/env bash
# The habits CI holds the code to: ruff's lint and format, and mypy over the package (see pyproject.toml).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy"
