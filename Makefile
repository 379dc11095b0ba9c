# The README's two commands: `make demo` (the main job on the embedded default) and `make test`.
# Both start with scripts/setup.sh, which installs everything on a fresh Debian machine.
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= out
SEED ?= 0
PRESET ?= default

.PHONY: setup demo test test-slow lint bench

setup:
	VENV=$(VENV) bash scripts/setup.sh

demo: setup
	$(PY) run_scripts/run_demo.py --preset $(PRESET) --output_dir $(OUT) --seed $(SEED)

test: setup
	$(PY) -m pytest -n 2 --dist loadfile -q

test-slow: setup
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check audiolang run_scripts benchmarks tests
	$(VENV)/bin/ruff format --check audiolang run_scripts benchmarks tests

bench: setup
	$(PY) benchmarks/bench_corpus.py
	$(PY) benchmarks/bench_dsclap.py --presets tiny small paper
