#!/usr/bin/env bash
# The MemAlign paper's protocol on one shipped sample, with the ablations, in one command:
#   bash scripts/paper_eval.sh halueval|prometheus|llmbar [more memalign eval options]
# Needs a chat model (MEMALIGN_MODEL, or --model; see README). Writes eval/DATASET/: results.md (the
# README table), results.json (every prediction and its provenance), CSVs and the plots (PNG, SVG, PDF).
# Defaults fit each sample: train on half of a file under 100 rows, shards up to that, seeds 0,1,2.
set -euo pipefail
MEMALIGN_WANTED_EXTRAS="local,plots"
[[ "${MEMALIGN_MODEL:-}" == "local" ]] && MEMALIGN_WANTED_EXTRAS="local,plots,local-llm"
dataset="${1:-}"
case "$dataset" in
  halueval) data=examples/data/halueval_sample.jsonl; spec=examples/judges/halueval.yaml ;;
  prometheus) data=examples/data/prometheus_sample.jsonl; spec=examples/judges/prometheus.yaml ;;
  llmbar) data=examples/data/llmbar_natural_sample.json; spec=examples/judges/llmbar.yaml ;;
  *) echo "usage: bash scripts/paper_eval.sh halueval|prometheus|llmbar [memalign eval options]" >&2; exit 2 ;;
esac
shift
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
exec "$VENV/bin/memalign" eval "$data" --spec "$spec" --memory both,semantic,episodic --seeds 0,1,2 \
  --out "eval/$dataset" "$@"
