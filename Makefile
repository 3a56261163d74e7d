# livecam: `make run` and `make test` set everything up first (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.livecam-setup

.PHONY: setup run test lint bench lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.txt scripts/setup.sh scripts/dlib-release-gil.patch
	PYTHON=$(PYTHON) bash scripts/setup.sh
	touch $@

run: setup
	$(BIN)/livecam run --camera 0

test: setup
	$(BIN)/python -m ruff check livecam tests benchmarks
	$(BIN)/python -m pytest -q

# The peer, face_recognition 1.3.0 (in the lock, installed --no-deps by set-up), runs on the same dlib.
bench: setup
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_matching.py
	$(BIN)/python benchmarks/bench_live.py
	$(BIN)/python benchmarks/bench_liveness.py

# requirements.txt from pyproject.toml: exact versions and hashes of every package, from PyPI alone
# (a local pip config's extra indexes are left out). Existing pins are kept; upgrade one deliberately
# with `make lock LOCK_FLAGS="--upgrade-package opencv-python"`, or all with LOCK_FLAGS=--upgrade,
# then run `make test` and commit both files.
LOCK_FLAGS ?=
lock: setup
	env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="make lock" \
	    $(BIN)/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	    --no-emit-find-links --extra dev --extra bench $(LOCK_FLAGS) -o requirements.txt pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
