# One command each, on a fresh machine:  `make train`  and  `make test`.
PYTHON ?= python3
VENV := .venv
VENV_TFA := .venv-tfa
PY := $(VENV)/bin/python
PY_TFA := $(VENV_TFA)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: train test test-slow parity lint format bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

$(VENV_TFA)/.installed: requirements-tfa.txt
	$(PYTHON) -m venv $(VENV_TFA)
	$(VENV_TFA)/bin/pip install --quiet --upgrade pip
	$(VENV_TFA)/bin/pip install --quiet -r requirements-tfa.txt
	touch $@

## The main job: triplet loss with semi-hard mining on the built-in synthetic faces.
train: $(VENV)/.installed
	$(PY) train.py --loss=triplet --mining=semihard $(ARGS)

## Lint, then the default test suite (no slow marker).
test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -m "not slow and not parity" $(ARGS)

## Slow checks: fresh-process round trips, multi-worker training, end-to-end runs.
test-slow: $(VENV)/.installed
	$(PY) -m pytest -m "slow" $(ARGS)

## Parity with tensorflow-addons 0.23, which runs in its own TF 2.15 virtualenv.
parity: $(VENV)/.installed $(VENV_TFA)/.installed
	TFFACE_TFA_PYTHON=$(abspath $(PY_TFA)) $(PY) -m pytest -m parity $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

## Benchmarks print their figures; BENCHMARKS.md records them.
bench: $(VENV)/.installed $(VENV_TFA)/.installed
	TFFACE_TFA_PYTHON=$(abspath $(PY_TFA)) $(PY) benchmarks/triplet_mining.py
	$(PY) benchmarks/input_pipeline.py

clean:
	rm -rf $(VENV) $(VENV_TFA) runs .pytest_cache .ruff_cache
