# Sourced by the quick-start scripts: a project virtualenv with the package, its local embedding
# model and the test tools. Idempotent: a run installs only when pyproject.toml changed since the last,
# and runs started together take turns installing (pip in one venv at once loses files).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEMALIGN_VENV:-$ROOT/.venv}"
# local-llm compiles llama.cpp for the real-model test tier; MEMALIGN_SKIP_REAL_MODEL=1 leaves both out.
if [[ "${MEMALIGN_SKIP_REAL_MODEL:-}" == "1" ]]; then
  EXTRAS="${MEMALIGN_EXTRAS:-local,test}"
else
  EXTRAS="${MEMALIGN_EXTRAS:-local,test,local-llm}"
fi
mkdir -p "$(dirname "$VENV")"
exec {install_lock}>"$VENV.install-lock"
flock "$install_lock"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
# torch first and pinned: 2.13.0 is a CPU build here, while an unpinned torch pulls a CUDA build of
# several GB. Override with MEMALIGN_TORCH (e.g. "torch==2.13.0+cpu" with your own index settings).
if [[ ",$EXTRAS," == *",local,"* ]] && ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  "$VENV/bin/python" -m pip install --quiet "${MEMALIGN_TORCH:-torch==2.13.0}"
fi
stamp="$VENV/.memalign-installed"
wanted="$EXTRAS $(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) $ROOT"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$EXTRAS]"
  echo "$wanted" > "$stamp"
fi
flock -u "$install_lock"
export HF_HUB_OFFLINE=1
cd "$ROOT"
