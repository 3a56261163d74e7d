# livecam: `make run` and `make test` set everything up first (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.livecam-setup

.PHONY: setup run test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh scripts/dlib-release-gil.patch
	PYTHON=$(PYTHON) bash scripts/setup.sh
	touch $@

run: setup
	$(BIN)/livecam run --camera 0

test: setup
	$(BIN)/python -m ruff check livecam tests benchmarks
	$(BIN)/python -m pytest -q

# The peer, face_recognition 1.3.0, runs on the same dlib: --no-deps keeps pip from building another one.
bench: setup
	$(BIN)/python -m pip -q install --no-deps face_recognition==1.3.0
	$(BIN)/python -m pip -q install pillow
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_matching.py
	$(BIN)/python benchmarks/bench_live.py
	$(BIN)/python benchmarks/bench_liveness.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
