# net_detr2: two commands do everything; each first sets up what is missing.
#
#   make demo    the main job (Inverted-Attention Faster R-CNN on the synthetic shapes set)
#   make test    the test suite, the linter included
#
# Set-up: a virtual environment in ./.venv (VENV=... for another place) holding exactly the packages of
# requirements.lock (pip, hash-checked) and this checkout in editable mode (with the `net-detr2` command).
# It runs once per version of requirements.lock and pyproject.toml (a stamp file in the environment);
# afterwards the commands start at once. An existing .venv, or a link to a shared environment, is used as
# it is: what the lock lacks is installed into it, nothing is deleted, and a linked environment shared by
# other checkouts does not get this checkout installed into it.

PYTHON ?= python3
VENV ?= .venv
LOCK := requirements.lock
PY := $(VENV)/bin/python
STAMP := $(VENV)/.net_detr2-$(shell cat $(LOCK) pyproject.toml | sha256sum | cut -c1-16)
MAIN_JOB := projects/InvertedAttention/configs/shapes/ia_faster_rcnn_R18_FPN_shapes.py
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help demo test setup lint lock

help:
	@echo "make demo    run the main job (sets up .venv first if needed); ARGS=--resume or ARGS=--overwrite"
	@echo "             to continue or replace an earlier run"
	@echo "make test    run the tests and the linter (sets up .venv first if needed)"
	@echo "make setup   only set up .venv (exact versions of $(LOCK))"
	@echo "make lint    ruff check + ruff format --check"
	@echo "make lock    regenerate $(LOCK) from requirements.txt in a clean environment"

demo: $(STAMP)
	$(PY) train_net.py --config-file $(MAIN_JOB) $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

setup: $(STAMP)

lock:
	$(PYTHON) tools/update_lock.py --python $(PYTHON)

$(STAMP): $(LOCK) pyproject.toml
	@if [ -e "$(VENV)" ] && [ ! -x "$(PY)" ]; then \
		echo "$(VENV) exists but holds no bin/python: move it away, or use another place with VENV=..."; exit 1; fi
	@if [ ! -e "$(VENV)" ]; then \
		$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
			|| { echo "net_detr2 needs Python >= 3.10; $(PYTHON) is $$($(PYTHON) --version)"; exit 1; }; \
		echo "[setup 1/3] creating the virtual environment $(VENV) ($$($(PYTHON) --version))"; \
		$(PYTHON) -m venv "$(VENV)"; \
	else echo "[setup 1/3] using the existing environment $(VENV) -> $$(readlink -f $(VENV))"; fi
	@echo "[setup 2/3] installing the $$(grep -c '==' $(LOCK)) packages of $(LOCK) (the first time about 2 minutes and 5 GB, mostly torch)"
	$(PY) -m pip install --disable-pip-version-check --require-hashes --progress-bar on -r $(LOCK)
	@if [ -L "$(VENV)" ]; then \
		echo "[setup 3/3] $(VENV) is a link to a shared environment: this checkout is not installed into it (run the commands from this folder)"; \
	else \
		echo "[setup 3/3] installing this checkout in editable mode (and the net-detr2 command)"; \
		$(PY) -m pip install --disable-pip-version-check --quiet --no-deps -e . ; \
	fi
	@rm -f $(VENV)/.net_detr2-*
	@touch $@
	@echo "Environment ready: $(VENV) ($$($(PY) -c 'import torch, torchvision; print("torch", torch.__version__, "/ torchvision", torchvision.__version__)'))"
