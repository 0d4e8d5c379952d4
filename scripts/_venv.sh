# Sourced by the quick-start scripts: a project virtualenv with the package, its local embedding
# model and the test tools. Idempotent: a second run installs nothing new.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEMALIGN_VENV:-$ROOT/.venv}"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
# torch first and pinned: 2.13.0 is a CPU build here, while an unpinned torch pulls a CUDA build of
# several GB. Override with MEMALIGN_TORCH (e.g. "torch==2.13.0+cpu" with your own index settings).
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  "$VENV/bin/python" -m pip install --quiet "${MEMALIGN_TORCH:-torch==2.13.0}"
fi
"$VENV/bin/python" -m pip install --quiet -e "$ROOT[local,test]"
export HF_HUB_OFFLINE=1
cd "$ROOT"
