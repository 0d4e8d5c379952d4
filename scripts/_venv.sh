# Sourced by the quick-start scripts: a project virtualenv with the package and the extras the script
# wants. Idempotent: a run installs only when pyproject.toml changed or an extra is missing (what was
# installed stays, so scripts wanting different extras do not undo each other), and runs started
# together take turns installing (pip in one venv at once loses files).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEMALIGN_VENV:-$ROOT/.venv}"
# The extras a script needs (it sets MEMALIGN_WANTED_EXTRAS before sourcing this); MEMALIGN_EXTRAS overrides.
EXTRAS="${MEMALIGN_EXTRAS:-${MEMALIGN_WANTED_EXTRAS:-local,test}}"
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
# Reinstall when pyproject.toml changed or an extra is missing; what was installed stays installed, so
# scripts that want different extras do not undo each other.
# The stamp's lines: pyproject.toml's hash, the checkout, the extras installed.
stamp="$VENV/.memalign-installed"
project="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"$'\n'"$ROOT"
installed="$( (sed -n 3p "$stamp" || true) 2>/dev/null)"
missing=""
for extra in ${EXTRAS//,/ }; do
  [[ ",$installed," == *",$extra,"* ]] || missing=1
done
if [[ ! -f "$stamp" || "$(sed -n 1,2p "$stamp")" != "$project" || -n "$missing" ]]; then
  union="$(printf '%s,%s' "$installed" "$EXTRAS" | tr ',' '\n' | grep -v '^$' | sort -u | paste -sd,)"
  # "core" names the package without extras (it is no extra of its own).
  extras="$(printf '%s' "$union" | tr ',' '\n' | { grep -vx core || true; } | paste -sd,)"
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT${extras:+[$extras]}"
  printf '%s\n%s\n' "$project" "$union" > "$stamp"
fi
flock -u "$install_lock"
export HF_HUB_OFFLINE=1
cd "$ROOT"
