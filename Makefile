# Two commands: `make run` (the whole story in the local emulator: deploy, a denial, the page, the recovery)
# and `make test` (from nothing: virtual environment, requirements, ruff, mypy, the whole pytest suite).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)

export GRPC_VERBOSITY ?= NONE

.PHONY: venv run canary test lint typecheck unit bench bench-fleet bench-detect mutation emulator clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m devkit.demo

# One scenario of the emulator, probed now with `python -m function probe` (devkit/canary.py): SCENARIO=iam_denied
canary: $(STAMP)
	$(PY) -m devkit.canary $(or $(SCENARIO),healthy)

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

# The deploy tool against 200 emulated projects, every read through gcloud and in-process side by side (BENCHMARKS.md)
bench-fleet: $(STAMP)
	$(PY) -m bench.fleet $(or $(FLEET_ARGS),--projects 200)

bench-detect: $(STAMP)
	$(PY) -m bench.detect $(or $(DETECT_ARGS),--one-minute)

# Mutation testing (MUTATION.md): not part of `make test`, ≈ 25 min on 2 cores; results kept in ./mutants.
mutation: $(STAMP)
	nice -n 10 $(PY) -m tools.mutation $(MUTATION_ARGS)

emulator: $(STAMP)
	$(PY) -m emulator --scenario $(or $(SCENARIO),healthy)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
