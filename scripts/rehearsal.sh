#!/usr/bin/env bash
# make rehearsal: the shipped 3B preset (configs/qwen2.5-vl-3b.yaml) run as a GPU user runs it (docs/gpu.md),
# on MMEB laid out exactly as the Hugging Face Hub serves it, on the CPU in minutes. The overlay
# configs/rehearsal.yaml swaps only the model, sizes, placement and the curation format; every other preset
# value runs as shipped. The data and the release's rewrite files come from `rge synth --hub-layout`, a
# snapshot like the one `huggingface-cli download --local-dir` leaves.
#
#   make rehearsal                         # in a new temporary folder, removed afterwards
#   REHEARSAL_DIR=/tmp/reh make rehearsal  # kept there; a rerun reuses every artifact
set -euo pipefail
cd "$(dirname "$0")/.."
RGE=${RGE:-.venv/bin/rge}

if [ -n "${REHEARSAL_DIR:-}" ]; then
  WORK=$REHEARSAL_DIR
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d -t rge-rehearsal-XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
fi
HUB=$WORK/hub       # what `huggingface-cli download --local-dir` leaves (MMEB-train, MMEB-eval, the release)
DATA=$WORK/data     # where docs/gpu.md fetches MMEB to (/data on a cluster)
export RGE_ARTIFACTS=$WORK/artifacts
started=$SECONDS

[ -d "$HUB/MMEB-eval" ] || "$RGE" synth "$HUB" --hub-layout --train-per-subset 16 --eval-per-subset 12

# docs/gpu.md, step by step (tests/test_rehearsal.py holds the two to the same commands)
"$RGE" data fetch mmeb-train "$DATA/mmeb-train" --from "$HUB/MMEB-train"
"$RGE" data fetch mmeb-eval "$DATA/mmeb-eval" --from "$HUB/MMEB-eval"
RUN=(
  --config configs/qwen2.5-vl-3b.yaml --config configs/rehearsal.yaml
  --set "data.source=$DATA/mmeb-train" --set "eval.data=$DATA/mmeb-eval"
  --set "data.query_rewrites=$HUB/RGE/src/instruction_replacements.yaml"
  --set "data.candidate_rewrites=$HUB/RGE/src/candidate_replacements.yaml"
  --set "eval.query_rewrites=$HUB/RGE/src/instruction_replacements-eval.yaml"
  --set "eval.candidate_rewrites=$HUB/RGE/src/candidate_replacements.yaml"
)
"$RGE" run "${RUN[@]}" --check
"$RGE" run "${RUN[@]}"
"$RGE" artifacts list
echo "rehearsal: the shipped preset ran end to end in $((SECONDS - started)) s (work folder $WORK)"
