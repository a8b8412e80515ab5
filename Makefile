# One command each, on a fresh machine:  `make train`  and  `make test`.
PYTHON ?= python3
VENV := .venv
VENV_TFA := .venv-tfa
PY := $(VENV)/bin/python
PY_TFA := $(VENV_TFA)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0
# pytest-xdist processes for `make test` (CI has 2 cores; each TF process takes ~2 GB).
TEST_WORKERS ?= 2
PIP_DOWNLOAD ?= $(PYTHON) -m pip download

.PHONY: train test test-slow test-backends parity parity-dlib parity-convert wheel-photos lint format bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

# Keras-on-JAX and Keras-on-torch virtualenvs (no TensorFlow) for `make test-backends`.
# tfface installs with its declared base dependencies (keras, numpy; no --no-deps), as a
# Keras user's `pip install tfface` would: the layers-only install is tested as shipped.
# requirements-%.txt adds only the backend, the pins of keras/numpy and pytest.
.venv-%/.installed: requirements-%.txt pyproject.toml
	$(PYTHON) -m venv .venv-$*
	.venv-$*/bin/pip install --quiet --upgrade pip
	.venv-$*/bin/pip install --quiet -e . -r requirements-$*.txt
	touch $@

# dlib (binary wheel) for the dlib_resnet_v1 parity checks; an explicit rule, so the
# .venv-% pattern above (which installs tfface too) does not apply.
.venv-dlib/.installed: requirements-dlib.txt
	$(PYTHON) -m venv .venv-dlib
	.venv-dlib/bin/pip install --quiet --upgrade pip
	.venv-dlib/bin/pip install --quiet -r requirements-dlib.txt
	touch $@

# torch 2.13 (local CPU wheel), onnxruntime, insightface and facenet-pytorch for the FaceNet /
# insightface converter parity checks (~2 min). facenet-pytorch pins torch 2.2 and
# torchvision: installed --no-deps; the worker loads its module file directly.
.venv-torch-ref/.installed: requirements-torch-ref.txt
	$(PYTHON) -m venv .venv-torch-ref
	.venv-torch-ref/bin/pip install --quiet --upgrade pip
	.venv-torch-ref/bin/pip install --quiet --only-binary=:all: -r requirements-torch-ref.txt
	.venv-torch-ref/bin/pip install --quiet --no-deps facenet-pytorch==2.6.0
	touch $@

# Real photos that ship in a wheel: insightface 2.1's t1.jpg and Tom_Hanks_54745.png,
# extracted (not installed) into .whl/photos for the pretrained-model checks.
.whl/photos/t1.jpg:
	$(PIP_DOWNLOAD) insightface==2.1 --no-deps --only-binary=:all: -d .whl --quiet
	$(PYTHON) -c "import zipfile, pathlib; z = zipfile.ZipFile('.whl/insightface-2.1-py3-none-any.whl'); d = pathlib.Path('.whl/photos'); d.mkdir(exist_ok=True); [d.joinpath(n).write_bytes(z.read('insightface/data/images/' + n)) for n in ('t1.jpg', 'Tom_Hanks_54745.png')]"

wheel-photos: .whl/photos/t1.jpg

$(VENV_TFA)/.installed: requirements-tfa.txt
	$(PYTHON) -m venv $(VENV_TFA)
	$(VENV_TFA)/bin/pip install --quiet --upgrade pip
	$(VENV_TFA)/bin/pip install --quiet -r requirements-tfa.txt
	touch $@

## The main job: triplet loss with semi-hard mining on the built-in synthetic faces.
train: $(VENV)/.installed
	$(PY) train.py --loss=triplet --mining=semihard $(ARGS)

# Optional gallery backends (Milvus client + milvus-lite, faiss-cpu), installed into .venv so
# their tests run in `make test` instead of skipping (~30 s, pins of requirements.txt kept).
$(VENV)/.gallery-extras: $(VENV)/.installed requirements-milvus.txt requirements-ann.txt
	$(VENV)/bin/pip install --quiet -r requirements-milvus.txt -r requirements-ann.txt
	touch $@

## Lint, then the default test suite (no slow marker).
test: $(VENV)/.installed $(VENV)/.gallery-extras
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -n $(TEST_WORKERS) -m "not slow and not parity" $(ARGS)

## Slow checks: fresh-process round trips, multi-worker training, end-to-end runs.
test-slow: $(VENV)/.installed .whl/photos/t1.jpg
	$(PY) -m pytest -m "slow" $(ARGS)

## Parity with tensorflow-addons 0.23, which runs in its own TF 2.15 virtualenv.
parity: $(VENV)/.installed $(VENV_TFA)/.installed .venv-dlib/.installed .venv-torch-ref/.installed
	TFFACE_TFA_PYTHON=$(abspath $(PY_TFA)) TFFACE_DLIB_PYTHON=$(abspath .venv-dlib/bin/python) TFFACE_TORCH_REF_PYTHON=$(abspath .venv-torch-ref/bin/python) $(PY) -m pytest -m parity $(ARGS)

## Only the FaceNet / insightface converter checks against facenet-pytorch, torch, onnxruntime
## and insightface's ArcFaceONNX (.venv-torch-ref).
parity-convert: $(VENV)/.installed .venv-torch-ref/.installed
	TFFACE_TORCH_REF_PYTHON=$(abspath .venv-torch-ref/bin/python) $(PY) -m pytest -m parity tests/models/test_convert_facenet.py tests/models/test_convert_insightface.py $(ARGS)

## Only the dlib_resnet_v1 checks against dlib 20 (.venv-dlib): parity and the pipelines.
parity-dlib: $(VENV)/.installed .venv-dlib/.installed
	TFFACE_DLIB_PYTHON=$(abspath .venv-dlib/bin/python) $(PY) -m pytest -m parity tests/models/test_dlib_parity.py $(ARGS)

## The layer and loss suites under KERAS_BACKEND=jax and =torch (CPU); numbers are checked
## against the same NumPy references as on TensorFlow. TF-only tests skip with a reason.
test-backends: .venv-jax/.installed .venv-torch/.installed
	KERAS_BACKEND=jax .venv-jax/bin/python -m pytest -m "not slow and not parity" -p no:cacheprovider tests/layers tests/losses tests/backends $(ARGS)
	KERAS_BACKEND=torch .venv-torch/bin/python -m pytest -m "not slow and not parity" -p no:cacheprovider tests/layers tests/losses tests/backends $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

## Benchmarks print their figures; BENCHMARKS.md records them.
bench: $(VENV)/.installed $(VENV_TFA)/.installed
	TFFACE_TFA_PYTHON=$(abspath $(PY_TFA)) $(PY) benchmarks/triplet_mining.py
	$(PY) benchmarks/input_pipeline.py

clean:
	rm -rf $(VENV) $(VENV_TFA) .venv-dlib runs .pytest_cache .ruff_cache
