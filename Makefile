# Two commands matter: `make demo` and `make test`. Both set up everything they need first.
SHELL := /bin/bash
# Python 3.13: what Azure's Flex Consumption runs until 2029, and the first with the worker engine as a pinned package.
PYTHON ?= $(shell tools/find-python.sh)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CHROMIUM := /usr/bin/chromium
# `make test` installs every service it needs, so under it "a service could not start" is a failure,
# never a skip (a bare `pytest` outside make still skips with the fix named).
export REQUIRE_SERVICES ?= 1

.PHONY: setup demo test lint check unit train soak bench bench-pipeline clean

$(PY_STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.13 is needed (see README: Two commands; PYTHON313=/path/to/python3.13 chooses one)"; exit 1; }
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 13), "Python 3.13 needed, found " + sys.version'
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))'; then rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) tools/install_worker_protos.py
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser).
# Another apt run holding the lock is waited for (up to 5 minutes) rather than failing the run.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else \
	  echo "chromium missing and no root: install Debian's chromium to run the browser tests"; exit 0; fi; \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
	  chromium fonts-liberation fonts-dejavu-core >/dev/null

setup: $(PY_STAMP) $(NODE_STAMP) $(CHROMIUM)

# The pipeline with a live dashboard (port 8050) and the app's HTTP functions (port 7071, key printed);
# ARGS passes options through, e.g. `make demo ARGS="--events 200000 --rate 0 --keep-serving"` (--help lists them).
demo: $(PY_STAMP)
	$(PY) -m devhost.demo $(ARGS)

lint: $(PY_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

# Does Azure's worker engine index and load this app? (Every test runs the functions through it, too.)
check: $(PY_STAMP)
	$(PY) -m devhost.worker

test: setup lint check
	$(PY) -m pytest

unit: $(PY_STAMP)
	$(PY) -m pytest -m unit

# Runs model/training/train.py and the independent benchmark over 5 seeds (about 10 minutes on 2 cores): the artifact, metadata,
# model card (both datasets' tables) and plots land in model/.
# ARGS passes options through, e.g. `make train ARGS="--data transactions.jsonl"` (JSON Lines or Parquet of labelled
# contract records) or `make train ARGS="--history-endpoint https://<account>.documents.azure.com:443/"`.
train: $(PY_STAMP)
	$(PY) -m model.training.train --benchmark $(ARGS)

# 1,000,000 events through the local pipeline: nothing lost, no duplicate, flat memory (not in `make test`);
# about 3 minutes, a progress line every tenth of the run.
soak: $(PY_STAMP)
	$(PY) -m devhost.soak --events 1000000

# Scoring speed: the seed's path vs ScoreTransactions vs the bare booster, cold start, installed size;
# the state's cost; peak memory of one invocation at the transaction limit and past it.
bench: $(PY_STAMP) $(NODE_STAMP)
	$(PY) -m benchmarks.bench_scoring
	$(PY) -m benchmarks.bench_envelopes
	$(PY) -m benchmarks.bench_state
	$(PY) -m benchmarks.bench_memory
	$(PY) -m benchmarks.bench_since

# Sustained events/s and enqueue→stored latency of the local pipeline, embedded store.
bench-pipeline: $(PY_STAMP)
	$(PY) -m benchmarks.bench_pipeline --events 200000

clean:
	rm -rf $(VENV) node_modules .data .test-output .mypy_cache .ruff_cache .pytest_cache

# The ULB fraud-detection handbook's simulation and protocol: its three baselines and our recipe on the same
# test week, next to its published figures; tables printed and written to model/BENCHMARK.md for the model card.
# ARGS passes options through, e.g. `make benchmark-model ARGS="--seed 1 --out /tmp/benchmark.md"`.
.PHONY: benchmark-model
benchmark-model: $(PY_STAMP)
	$(PY) -m model.benchmark.run $(ARGS)
