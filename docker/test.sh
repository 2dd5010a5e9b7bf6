#!/usr/bin/env bash
# make docker-test: build the images and run the pipeline and the PostgreSQL-backed Prefect stack in
# containers, then tear down what it made. Not part of `make test`; docs/orchestration.md ("Docker") has
# its time. Needs a Docker engine (20.10+, BuildKit) and docker-compose (v1.29 or the v2 plugin).
#   1. base image: $RGE_BASE_IMAGE if given, else python:3.11-slim-bookworm if it can be pulled, else a
#      Debian bookworm image made here with debootstrap (root; the mirror apt uses on this machine)
#   2. rge:cpu from docker/Dockerfile.cpu on that base (the host's pip CA bundle as a build secret, its
#      torch CPU wheel through docker/wheels/, when pip on this machine is configured with them)
#   3. the tiny pipeline in a container: rge eval --config configs/tiny.yaml, artifacts on a volume
#   4. compose: PostgreSQL (rge-postgres from Debian's package when postgres:16 cannot be pulled), the
#      Prefect server on it, a worker serving the deployments; prefect deployment run rge/full-pipeline
#      --watch to Completed; the artifacts checked on the stack's volume
#   5. teardown: containers, networks and volumes it made (images stay as a build cache unless
#      RGE_DOCKER_KEEP_IMAGES=0)
# If no engine answers and this runs as root with dockerd installed, it starts one (and stops it at the end).
# A missing tool (docker, docker-compose, debootstrap) is installed with apt-get when root, as make slurm-test
# does, else named in one line (scripts/require.sh).
set -euo pipefail
# Whatever fails says what it was, before the teardown's lines.
trap 'echo "docker-test: failed (status $?) at docker/test.sh line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
REQUIRE_NAME=docker-test
source scripts/require.sh
require docker docker.io "build and run the images"

PROJECT=rge-docker-test
VOLUME=rge-docker-test-artifacts
IMAGE=rge:cpu
POSTGRES_IMAGE=${RGE_POSTGRES_IMAGE:-}
KEEP_IMAGES=${RGE_DOCKER_KEEP_IMAGES:-1}
# A client that builds with BuildKit (RUN --mount, --secret): one with the buildx plugin, or one older than
# 23.0, whose BuildKit is built in (Debian's docker.io 20.10 is; a newer client without buildx refuses).
pick_docker() {
    local client major
    for client in $(type -ap docker); do
        if "$client" buildx version >/dev/null 2>&1; then echo "$client" && return; fi
        major=$("$client" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
        if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then echo "$client" && return; fi
    done
    echo docker
}
DOCKER=$(pick_docker)
docker() { "$DOCKER" "$@"; }
COMPOSE=(docker-compose)
if docker compose version >/dev/null 2>&1; then
    COMPOSE=("$DOCKER" compose)
else
    require docker-compose docker-compose "run the PostgreSQL-backed Prefect stack (docker/compose.yaml)"
fi
export DOCKER_BUILDKIT=1
started=$(date +%s)
step() { printf '\n== %s (%ds)\n' "$*" $(($(date +%s) - started)); }

STARTED_DOCKERD=""
if ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        require dockerd docker.io "start a Docker engine"
        step "no Docker engine answers: starting dockerd as root (log: /tmp/rge-dockerd.log)"
        dockerd >/tmp/rge-dockerd.log 2>&1 &
        STARTED_DOCKERD=$!
        for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    fi
    docker info >/dev/null 2>&1 || { echo "docker-test: no Docker engine (docker info fails)" >&2; exit 1; }
fi

COPIED_WHEELS=()
cleanup() {
    status=$?
    step "teardown"
    "${COMPOSE[@]}" -p "$PROJECT" -f docker/compose.yaml down --volumes --remove-orphans >/dev/null 2>&1 || true
    docker volume rm -f "$VOLUME" >/dev/null 2>&1 || true
    if [ "${#COPIED_WHEELS[@]}" -gt 0 ]; then rm -f "${COPIED_WHEELS[@]}"; fi
    if [ "$KEEP_IMAGES" = 0 ]; then docker image rm -f "$IMAGE" rge-postgres:test >/dev/null 2>&1 || true; fi
    if [ -n "$STARTED_DOCKERD" ]; then kill "$STARTED_DOCKERD" && wait "$STARTED_DOCKERD" || true; fi
    exit $status
}
trap cleanup EXIT

# --- 1. base image ---------------------------------------------------------------------------------
base=${RGE_BASE_IMAGE:-}
if [ -z "$base" ]; then
    if docker image inspect python:3.11-slim-bookworm >/dev/null 2>&1 || docker pull -q python:3.11-slim-bookworm >/dev/null 2>&1; then
        base=python:3.11-slim-bookworm
    else
        base=rge-base:bookworm
        if ! docker image inspect "$base" >/dev/null 2>&1; then
            step "python:3.11-slim-bookworm cannot be pulled: making $base with debootstrap"
            require debootstrap debootstrap "make a Debian base image (no registry answers)"
            # apt's sources: the deb822 files, the classic list, or neither (grep's status must not end the run)
            mirror=$({ grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } | awk '{print $2}' | head -1)
            rootfs=$(mktemp -d)
            debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
                bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" >/tmp/rge-debootstrap.log 2>&1 \
                || { echo "docker-test: debootstrap failed; its log: /tmp/rge-debootstrap.log" >&2; exit 1; }
            tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
            rm -rf "$rootfs"
        fi
    fi
fi
step "base image: $base"

# --- 2. rge:cpu ------------------------------------------------------------------------------------
secret=()
pip_setting() {  # $1 = cert | find-links: the value pip on this machine uses, from any of its config sources
    python3 -m pip config list 2>/dev/null | sed -n "s/^[^.]*\.$1='\(.*\)'\$/\1/p" | head -1
}
cert=${PIP_CERT:-$(pip_setting cert)}
if [ -n "$cert" ] && [ -f "$cert" ]; then secret=(--secret "id=pip_cert,src=$cert"); fi
for folder in ${PIP_FIND_LINKS:-$(pip_setting find-links)}; do
    for wheel in "$folder"/torch-*+cpu-*.whl; do
        [ -f "$wheel" ] && [ ! -f "docker/wheels/$(basename "$wheel")" ] || continue
        cp "$wheel" docker/wheels/ && COPIED_WHEELS+=("docker/wheels/$(basename "$wheel")")
    done
done
step "building $IMAGE (${#secret[@]} secret args, ${#COPIED_WHEELS[@]} wheels copied)"
torch_index=()  # the wheel is here: skip PyTorch's index, unreachable where the wheel had to be copied
if [ "${#COPIED_WHEELS[@]}" -gt 0 ] || ls docker/wheels/torch-*.whl >/dev/null 2>&1; then torch_index=(--build-arg TORCH_INDEX=); fi
docker build -q -f docker/Dockerfile.cpu --build-arg "BASE_IMAGE=$base" "${torch_index[@]}" "${secret[@]}" -t "$IMAGE" . >/dev/null
docker image ls "$IMAGE" --format '{{.Repository}}:{{.Tag}} {{.Size}}'

# --- 3. the tiny pipeline in a container -------------------------------------------------------------
step "rge eval --config configs/tiny.yaml in $IMAGE"
docker volume create "$VOLUME" >/dev/null
docker run --rm --shm-size 2g -v "$VOLUME:/artifacts" "$IMAGE" rge eval --config configs/tiny.yaml | tail -15
docker run --rm -v "$VOLUME:/artifacts" "$IMAGE" rge artifacts list --kind eval | grep -q eval- \
    || { echo "docker-test: no eval artifact on the volume" >&2; exit 1; }

# --- 4. the compose stack ----------------------------------------------------------------------------
if [ -z "$POSTGRES_IMAGE" ]; then
    if docker image inspect postgres:16 >/dev/null 2>&1 || docker pull -q postgres:16 >/dev/null 2>&1; then
        POSTGRES_IMAGE=postgres:16
    else
        step "postgres:16 cannot be pulled: building rge-postgres:test from Debian's postgresql"
        docker build -q -f docker/Dockerfile.postgres --build-arg "BASE_IMAGE=$base" -t rge-postgres:test . >/dev/null
        POSTGRES_IMAGE=rge-postgres:test
    fi
fi
export RGE_POSTGRES_IMAGE=$POSTGRES_IMAGE
# The server runs from rge:cpu (it has Prefect) unless the official Prefect image can be pulled.
PREFECT_IMAGE=${RGE_PREFECT_IMAGE:-prefecthq/prefect:3.7.7-python3.11}
docker image inspect "$PREFECT_IMAGE" >/dev/null 2>&1 || docker pull -q "$PREFECT_IMAGE" >/dev/null 2>&1 || PREFECT_IMAGE=$IMAGE
export RGE_PREFECT_IMAGE=$PREFECT_IMAGE
step "compose up: $POSTGRES_IMAGE, Prefect server from $PREFECT_IMAGE, worker $IMAGE"
"${COMPOSE[@]}" -p "$PROJECT" -f docker/compose.yaml up -d --no-build postgres prefect-server worker
# The worker registers the deployments when `rge serve` starts; wait for them.
run_in_worker() { "${COMPOSE[@]}" -p "$PROJECT" -f docker/compose.yaml exec -T worker "$@"; }
for _ in $(seq 120); do
    run_in_worker prefect deployment inspect rge/full-pipeline >/dev/null 2>&1 && break
    sleep 2
done
step "prefect deployment run rge/full-pipeline --watch"
run_in_worker prefect deployment run rge/full-pipeline --watch | tail -5
state=$(run_in_worker python -c "
import asyncio
from prefect.client.orchestration import get_client
from prefect.client.schemas.sorting import FlowRunSort
async def main():
    async with get_client() as client:
        runs = await client.read_flow_runs(limit=1, sort=FlowRunSort.START_TIME_DESC)
        print(runs[0].state.type.value)
asyncio.run(main())")
[ "$state" = COMPLETED ] || { echo "docker-test: flow run ended $state" >&2; exit 1; }
artifacts=$(run_in_worker rge artifacts list)
tail -8 <<<"$artifacts"
for kind in pairs rationales dataset model eval; do
    grep -q "^$kind-\| $kind-" <<<"$artifacts" || { echo "docker-test: no $kind artifact" >&2; exit 1; }
done
step "docker-test passed"
