#!/usr/bin/env bash
# The GPU first-run check (docs/gpu.md, benchmarks/README.md "GPU figures"): the rehearsal's path on `cuda`
# with the real Qwen2.5-VL-3B architecture at random weights, bf16 (benchmarks/gpu_check.py), on a machine that
# has only torch, transformers and peft and no network. DeepSpeed and what the rge command needs come from a
# small wheelhouse made beforehand where a package index answers (~7 MiB, cp312 manylinux wheels plus
# DeepSpeed's sdist, built there against the machine's torch).
#
#   bash benchmarks/gpu_check.sh --prepare          # here: benchmarks/.wheelhouse (git-ignored)
#   bash benchmarks/gpu_check.sh                    # there, with benchmarks/.wheelhouse carried along
#   bash benchmarks/gpu_check.sh --tiny --device cpu  # the same code on the CPU (tests/test_gpu_check.py)
set -euo pipefail
trap 'echo "gpu_check: failed (status $?) at benchmarks/gpu_check.sh line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
WHEELHOUSE=benchmarks/.wheelhouse
SITE=.gpu-check/site
PYTHON=${PYTHON:-python3}
DEEPSPEED=0.19.8  # the version the CPU install resolves (docs/install.md)
# import name -> the wheelhouse packages that bring it (installed only where the import fails)
declare -A BRINGS=(
    [deepspeed]="deepspeed hjson ninja py-cpuinfo msgpack psutil pydantic pydantic-core annotated-types typing-inspection typing-extensions einops nvidia-ml-py"
    [typer]="typer click shellingham"
    [rich]="rich markdown-it-py mdurl pygments"
)

if [ "${1:-}" = --prepare ]; then
    rm -rf "$WHEELHOUSE" && mkdir -p "$WHEELHOUSE"
    pip download --quiet --no-deps --no-binary :all: "deepspeed==$DEEPSPEED" -d "$WHEELHOUSE"
    pip download --quiet --no-deps --only-binary :all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
        -d "$WHEELHOUSE" $(for packages in "${BRINGS[@]}"; do echo "$packages"; done | tr ' ' '\n' | grep -vx deepspeed)
    echo "gpu_check: wheelhouse $WHEELHOUSE: $(ls "$WHEELHOUSE" | wc -l) files, $(du -sh "$WHEELHOUSE" | cut -f1)"
    exit 0
fi

missing=()
for module in "${!BRINGS[@]}"; do
    PYTHONPATH=$SITE "$PYTHON" -c "import $module" >/dev/null 2>&1 || missing+=(${BRINGS[$module]})
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ -d "$WHEELHOUSE" ]; then
        echo "gpu_check: installing ${missing[*]} from $WHEELHOUSE into $SITE"
        DS_BUILD_OPS=0 "$PYTHON" -m pip install --quiet --no-index --no-deps --no-build-isolation \
            --find-links "$WHEELHOUSE" --target "$SITE" "${missing[@]}" \
            || echo "gpu_check: the wheelhouse did not install (${missing[*]}); what needs it is skipped"
    else
        echo "gpu_check: no $WHEELHOUSE (bash benchmarks/gpu_check.sh --prepare makes it): ${missing[*]} stay missing"
    fi
fi
PYTHONPATH=.:$SITE HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false exec "$PYTHON" benchmarks/gpu_check.py "$@"
