#!/usr/bin/env bash
# make slurm-test: the Slurm launchers for real, on a one-node cluster (slurm/local-cluster.sh sets one up
# as root when none answers, and stops it at the end). Not part of `make test`; docs/orchestration.md
# ("Slurm") has its time.
#   1. sbatch --wait slurm/rge.sbatch: the tiny pipeline with training (2 processes over gloo) and the
#      sharded evaluation (2 processes) each launched by srun; the model and eval artifacts must be
#      complete, and two srun steps must have run
#   2. scancel mid-training, then the same job submitted again: it resumes from the checkpoint the trainers
#      saved on SIGTERM, and finishes with every step logged once
#   3. scontrol requeue mid-training (what preemption with PreemptMode=REQUEUE does): Slurm runs the job
#      again by itself, and it resumes the same way
#   4. the nightly-on-Slurm path: a Prefect server, a worker of the `slurm` pool, `prefect deploy` of
#      rge/nightly-slurm; a run of it becomes a Slurm job (slurm/flow-run.sbatch) whose training is
#      launched by srun, and the flow run ends Completed
# Artifacts go to a fresh folder under .cache/ (kept when a check fails, removed otherwise); jobs still
# queued at the end are cancelled, the Prefect server and worker stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # `make setup`'s rge; sbatch passes the environment to the job
# One at a time per machine: a second run would stop the first one's daemons and cancel its jobs.
exec 9>"${TMPDIR:-/tmp}/rge-slurm-test.lock"
flock -n 9 || { echo "slurm-test: another make slurm-test is running on this machine" >&2; exit 1; }
mkdir -p .cache
WORK=$(mktemp -d "$PWD/.cache/slurm-test.XXXXXX")  # under the checkout: the (one) node sees it
export RGE_ARTIFACTS=$WORK/artifacts
CLUSTER_STATE=$WORK/cluster.state
PREFIX=rge-slurm-test  # the names of this test's jobs, cancelled at the end if still queued
DAEMONS=()  # process groups of the Prefect server and worker
started=$(date +%s)
step() { printf '\n== %s (%ds)\n' "$*" $(($(date +%s) - started)); }
fail() { echo "slurm-test: FAILED: $*" >&2; exit 1; }

cleanup() {
    status=$?
    step "cleanup"
    squeue --noheader --format='%i %j' 2>/dev/null | awk -v p="$PREFIX-" 'index($2, p) == 1 {print $1}' |
        xargs -r scancel 2>/dev/null || true
    for group in "${DAEMONS[@]}"; do kill -INT -- "-$group" 2>/dev/null || true; done
    if [ "${#DAEMONS[@]}" -gt 0 ]; then sleep 5; fi
    for group in "${DAEMONS[@]}"; do kill -KILL -- "-$group" 2>/dev/null || true; done
    bash slurm/local-cluster.sh down "$CLUSTER_STATE" || true
    if [ "$status" = 0 ]; then
        rm -rf "$WORK"
        echo "slurm-test: passed in $(($(date +%s) - started)) s"
    else
        echo "slurm-test: failed (status $status); job logs and artifacts kept in $WORK" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TINY=(--config configs/tiny.yaml --set train.launch.nproc=2 --set eval.launch.nproc=2)
submit() {  # name, [sbatch options...] --, rge run arguments...; prints the job id
    local name=$1 options=()
    shift
    while [ "$1" != -- ]; do options+=("$1") && shift; done
    shift
    sbatch --parsable --job-name="$PREFIX-$name" --nodes=1 --cpus-per-task="$(nproc)" --output="$WORK/$name.out" \
        "${options[@]}" slurm/rge.sbatch "$@"
}
job_field() { scontrol show job "$1" 2>/dev/null | grep -o "$2=[^ ]*" | head -1 | cut -d= -f2; }
unfinished_model() {  # the model artifact being trained: it has a job file and no manifest yet
    for folder in "$RGE_ARTIFACTS"/model/*/; do
        if [ -f "$folder/job.json" ] && [ ! -f "$folder/manifest.json" ]; then echo "${folder%/}"; fi
    done
}
latest_checkpoint() { find "$1/checkpoints" -name complete.json 2>/dev/null | sed 's|.*/step-0*\([0-9]*\)/.*|\1|' | sort -n | tail -1; }
wait_for_checkpoint() {  # job id: waits until the training it runs has a complete checkpoint; prints the folder
    local folder="" i
    for i in $(seq 600); do
        [ -z "$folder" ] && folder=$(unfinished_model | head -1)
        if [ -n "$folder" ] && [ -n "$(latest_checkpoint "$folder")" ]; then echo "$folder" && return; fi
        [ "$(job_field "$1" JobState)" = RUNNING ] || [ "$(job_field "$1" JobState)" = PENDING ] ||
            fail "job $1 ended before a checkpoint: $(job_field "$1" JobState)"
        sleep 1
    done
    fail "no checkpoint after 600 s"
}
record_steps_while() {  # pid, file: squeue's job steps every second while the process lives
    while kill -0 "$1" 2>/dev/null; do
        squeue --steps --noheader --format='%i %j' >>"$2" 2>/dev/null || true
        sleep 1
    done
}
check_steps_logged_once() {  # model folder, steps
    local logged
    logged=$(python -c 'import json, sys; print(" ".join(str(json.loads(l)["step"]) for l in open(sys.argv[1])))' "$1/metrics.jsonl")
    [ "$logged" = "$(seq -s ' ' 1 "$2")" ] || fail "$1/metrics.jsonl: steps $logged, not 1..$2 once each"
}

step "a Slurm cluster"
bash slurm/local-cluster.sh up "$CLUSTER_STATE"
sinfo

step "1. the tiny pipeline in one job: sbatch --wait (train and eval launched by srun)"
submit pipeline --wait -- "${TINY[@]}" >"$WORK/pipeline.id" 2>"$WORK/pipeline.sbatch" &
waiter=$!
record_steps_while "$waiter" "$WORK/steps.seen"
wait "$waiter" || fail "the pipeline job did not complete: $(cat "$WORK/pipeline.sbatch") $(tail -20 "$WORK/pipeline.out")"
job=$(cat "$WORK/pipeline.id")
srun_steps=$(grep -c "^$job\.[0-9]* " <(sort -u "$WORK/steps.seen")) || true
echo "job $job: $(job_field "$job" JobState), srun steps seen: $srun_steps"
[ "$(job_field "$job" JobState)" = COMPLETED ] || fail "job $job: $(job_field "$job" JobState)"
[ "$srun_steps" -ge 2 ] || fail "expected the trainer and the eval shards as two srun steps, saw $srun_steps"
rge artifacts list --kind model
rge artifacts list --kind eval
[ "$(rge artifacts list --kind eval | grep -c 'eval-')" = 1 ] || fail "no complete eval artifact"
trained=$(for f in "$RGE_ARTIFACTS"/model/*/; do if [ -f "$f/job.json" ] && [ -f "$f/manifest.json" ]; then echo "${f%/}"; fi; done)
[ -n "$trained" ] || fail "no complete trained model artifact"
check_steps_logged_once "$trained" 30

# Trainings of their own (train.steps is part of the version); the dataset of step 1 is reused.
LONG=(--stages train --set train.steps=60 --set train.checkpoint_every=25)

step "2. scancel mid-training, then the same job again"
job=$(submit cancelled -- "${TINY[@]}" "${LONG[@]}")
folder=$(wait_for_checkpoint "$job")  # none is periodic before step 25: this waits for the SIGTERM one
python - "$folder/metrics.jsonl" <<'EOF'  # past step 25's periodic checkpoint, so the next one is SIGTERM's
import json, sys, time
for _ in range(600):
    lines = open(sys.argv[1]).read().splitlines()
    if lines and json.loads(lines[-1])["step"] >= 28:
        break
    time.sleep(0.2)
EOF
scancel "$job"
for _ in $(seq 120); do [ "$(job_field "$job" JobState)" = CANCELLED ] && ! squeue -j "$job" -h | grep -q . && break; sleep 1; done
sleep 2
saved=$(latest_checkpoint "$folder")
echo "job $job: $(job_field "$job" JobState); newest checkpoint: step $saved"
[ ! -f "$folder/manifest.json" ] || fail "the cancelled training finished anyway"
[ "$saved" -gt 25 ] || fail "the trainers saved no checkpoint on SIGTERM (newest: step $saved)"
submit resubmitted --wait -- "${TINY[@]}" "${LONG[@]}" >/dev/null ||
    fail "the resubmitted job failed: $(tail -20 "$WORK/resubmitted.out")"
grep -q "resumed from step $saved" "$folder/trainer.log" || fail "the resubmitted job did not resume from step $saved"
[ -f "$folder/manifest.json" ] || fail "the resubmitted job left no complete model"
check_steps_logged_once "$folder" 60
echo "resubmitted: resumed from step $saved, finished 60 steps"

step "3. scontrol requeue mid-training (preemption with PreemptMode=REQUEUE)"
REQUEUED=(--stages train --set train.steps=50 --set train.checkpoint_every=10)
job=$(submit requeued -- "${TINY[@]}" "${REQUEUED[@]}")
folder=$(wait_for_checkpoint "$job")
scontrol requeue "$job"
requeued_at=$(date +%s)
for _ in $(seq 900); do
    state=$(job_field "$job" JobState)
    case $state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL) break ;; esac
    sleep 1
done
saved=$(grep -o "resumed from step [0-9]*" "$folder/trainer.log" | grep -o "[0-9]*$" || true)
echo "job $job: $state after $(job_field "$job" Restarts) restart(s), $(($(date +%s) - requeued_at)) s after the requeue; resumed from step ${saved:-none}"
grep "^rge: job" "$WORK/requeued.out" || true
[ "$state" = COMPLETED ] || fail "the requeued job ended $state: $(tail -20 "$WORK/requeued.out")"
[ "$(job_field "$job" Restarts)" = 1 ] || fail "the job was not run again by Slurm"
[ -n "$saved" ] && [ "$saved" -ge 10 ] || fail "the requeued job did not resume from a checkpoint"
check_steps_logged_once "$folder" 50

step "4. a Prefect flow run as a Slurm job: rge/nightly-slurm through a worker of the slurm pool"
port=$(python -c 'from rge_core.launch import free_port; print(free_port())')
export PREFECT_HOME=$WORK/prefect PREFECT_API_URL=http://127.0.0.1:$port/api PREFECT_SERVER_ANALYTICS_ENABLED=false
setsid prefect server start --host 127.0.0.1 --port "$port" >"$WORK/prefect-server.log" 2>&1 &
DAEMONS+=($!)
disown
for _ in $(seq 120); do curl -sf "$PREFECT_API_URL/health" >/dev/null && break; sleep 1; done
curl -sf "$PREFECT_API_URL/health" >/dev/null || fail "the Prefect server did not start: $(tail -5 "$WORK/prefect-server.log")"
prefect work-pool create slurm --type process >/dev/null
prefect --no-prompt deploy --name nightly-slurm >"$WORK/deploy.log" 2>&1 || fail "prefect deploy: $(tail -20 "$WORK/deploy.log")"
setsid prefect worker start --pool slurm >"$WORK/worker.log" 2>&1 &
DAEMONS+=($!)
disown
# The pool's command with this test's log folder; a training of its own (train.steps), launched by srun.
command="sbatch --wait --quiet --job-name=$PREFIX-flow-run --chdir=$PWD --output=$WORK/flow-run-%j.out $PWD/slurm/flow-run.sbatch"
overrides='["train.launch.launcher=slurm", "eval.launch.launcher=slurm", "train.launch.nproc=2", "train.steps=20"]'
prefect deployment run rge/nightly-slurm --watch --params "{\"stages\": [\"train\"], \"overrides\": $overrides}" \
    --job-variable "command=$command" >"$WORK/flow-run.log" 2>&1 &
waiter=$!
record_steps_while "$waiter" "$WORK/flow-run-steps.seen"
wait "$waiter" || fail "the flow run did not complete: $(tail -20 "$WORK/flow-run.log"; tail -20 "$WORK"/flow-run-*.out)"
grep -q "Completed" "$WORK/flow-run.log" || fail "the flow run did not complete: $(tail -20 "$WORK/flow-run.log")"
job=$(grep -o "job [0-9]* on" "$WORK"/flow-run-*.out | grep -o "[0-9]*")
flow_run=$(grep -o "flow run [0-9a-f-]*," "$WORK"/flow-run-*.out | grep -o "[0-9a-f-]*-[0-9a-f-]*")
srun_steps=$(grep -c "^$job\.[0-9]* " <(sort -u "$WORK/flow-run-steps.seen")) || true
echo "flow run $flow_run: Completed, as Slurm job $job ($(job_field "$job" JobState)) with $srun_steps srun step(s)"
[ "$(job_field "$job" JobState)" = COMPLETED ] || fail "job $job: $(job_field "$job" JobState)"
[ "$srun_steps" -ge 1 ] || fail "the flow run's training was not launched by srun"
folder=$(for f in "$RGE_ARTIFACTS"/model/*/; do if grep -q '"steps": 20,' "$f/job.json" 2>/dev/null; then echo "${f%/}"; fi; done)
[ -n "$folder" ] && [ -f "$folder/manifest.json" ] || fail "no complete 20-step model from the flow run"
check_steps_logged_once "$folder" 20
