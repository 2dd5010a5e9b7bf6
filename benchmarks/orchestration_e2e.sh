#!/usr/bin/env bash
# Orchestration end to end on the tiny default: a Prefect server, `rge serve`, `rge/full-pipeline` cold,
# the same deployment again (every stage skipped), `rge/curation` with a new prompt set; baseline: the same
# cold pipeline through `rge run` without Prefect, in the same run. Prints times and the overhead ratio.
# Not a bench_*.py (the smoke test skips it): it starts a server and takes a few minutes.
#   bash benchmarks/orchestration_e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/rge-e2e-XXXX)
PORT=$(.venv/bin/python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
export PREFECT_HOME=$WORK/prefect PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_API_URL=http://127.0.0.1:$PORT/api
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TORCH_EXTENSIONS_DIR=$PWD/.cache/torch_extensions
export VLLM_CACHE_ROOT=$PWD/.cache/vllm HF_HOME=$PWD/.cache/huggingface
now() { date +%s.%N; }
secs() { printf "%.1f" "$(echo "$2 - $1" | bc)"; }

t0=$(now)
RGE_ARTIFACTS=$WORK/direct RGE_CACHE=$WORK/direct-cache .venv/bin/rge run --config configs/tiny.yaml > $WORK/direct.log 2>&1
direct=$(secs "$t0" "$(now)")

setsid .venv/bin/prefect server start --host 127.0.0.1 --port "$PORT" > $WORK/server.log 2>&1 &
SERVER=$!
RUNNER=""
trap 'kill -INT -- -$SERVER ${RUNNER:+-$RUNNER} 2>/dev/null; sleep 5; kill -9 -- -$SERVER ${RUNNER:+-$RUNNER} 2>/dev/null || true' EXIT
t0=$(now)
until curl -sf "$PREFECT_API_URL/health" > /dev/null; do sleep 1; done
server=$(secs "$t0" "$(now)")
RGE_ARTIFACTS=$WORK/flow RGE_CACHE=$WORK/flow-cache setsid .venv/bin/rge serve > $WORK/serve.log 2>&1 &
RUNNER=$!
until grep -q "being served" $WORK/serve.log; do sleep 1; done

run() {  # deployment, extra args...; prints seconds, fails unless Completed
  local start; start=$(now)
  .venv/bin/prefect deployment run "$@" --watch > $WORK/run.log 2>&1
  grep -q "finished successfully" $WORK/run.log || { tail -20 $WORK/run.log >&2; exit 1; }
  secs "$start" "$(now)"
}
cold=$(run rge/full-pipeline)
rerun=$(run rge/full-pipeline)
cp -r prompts/rge-terse $WORK/my-set && sed -i 's/^name: rge-terse/name: my-set/' $WORK/my-set/manifest.yaml
curation=$(run rge/curation --param prompt_set=$WORK/my-set)

echo "prefect server healthy after          ${server} s"
echo "rge run, cold (baseline)               ${direct} s"
echo "rge/full-pipeline, cold                ${cold} s"
echo "rge/full-pipeline, rerun (all skipped) ${rerun} s"
echo "rge/curation, new prompt set           ${curation} s"
echo "ratio: deployment run vs rge run (cold): $(echo "scale=2; $cold / $direct" | bc)x time"
rm -rf "$WORK"
