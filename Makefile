# One-command set-up: `make run` and `make test` create .venv and install everything first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: run test test-full test-cluster lint format clean

$(BIN)/alrun: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the local CPU build; an open range would pull GBs of CUDA wheels
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/alrun  ## the default experiment (BBC News, multiclass)
	$(BIN)/alrun $(ARGS)

# The annotator's browser tests drive Debian's Chromium (Playwright cannot download one here).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	-$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
	  || echo "could not install chromium: the browser tests will be skipped (they fail under CI=true)"

# `full` tests (long end-to-end repeats of behaviour checked more cheaply) only in test-full;
# quality floors of the candidates are measurements: benchmarks/quality_floors.py
# Two pytest workers (pytest-xdist): most tests wait on a subprocess's start-up, a browser or a
# server, so two share 2 cores well; they share one embedding cache (written atomically).
WORKERS ?= 2
export ALRUN_TEST_CACHE_DIR ?= $(CURDIR)/.cache/alrun-tests
PYTEST := $(BIN)/pytest -q -n $(WORKERS) --dist worksteal
# `cluster` tests need a local SLURM and Ray (scripts/local-*.sh): `make test-cluster`, CI's last step
test: lint $(CHROMIUM)  ## lint + the suite without `full` tests (under 5 min on 2 idle cores)
	$(PYTEST) -m "not full and not cluster"

test-full: lint $(CHROMIUM)  ## lint + every test but `cluster` (what CI runs, in two steps: .ci/run)
	$(PYTEST) -m "not cluster"

test-cluster: $(BIN)/alrun  ## sweeps on a real SLURM and Ray: starts both, runs the tests, stops both
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	rc=0; $(SUDO) scripts/local-slurm.sh start && scripts/local-ray.sh start \
	  && $(BIN)/pytest -q -m cluster tests/cluster || rc=$$?; \
	  scripts/local-ray.sh stop; $(SUDO) scripts/local-slurm.sh stop; exit $$rc

# The type checker (pyproject's [tool.mypy]) must stay clean; a new error fails lint.
lint: $(BIN)/alrun
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(BIN)/alrun
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .cache outputs
