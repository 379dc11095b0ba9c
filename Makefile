# The README's two commands: `make demo` (the main job on the embedded default) and `make test`.
# Both start with scripts/setup.sh, which installs everything on a fresh Debian machine.
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= out
SEED ?= 0
PRESET ?= default

.PHONY: setup demo test test-slow lint bench turbo-objectives

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
	$(PY) benchmarks/bench_turbo.py --presets tiny small
	$(PY) benchmarks/bench_ctal.py --part all
	$(PY) benchmarks/bench_import.py --repeats 7

# Turbo's Table 1 / Fig. 2-3 on the embedded corpus, as measured in the README (3 objectives x 3 seeds x 2 tasks,
# 400 training clips, 2 epochs; about 45 min on 2 cores once the corpus is built). The encoders are the demo's
# `small` preset before pre-training (seed 0), saved by a one-step run_pretrain.
turbo-objectives: setup
	$(PY) run_scripts/run_pretrain.py --model_type dsclap --preset small --corpus_dir $(OUT)/corpus-default-seed0 \
		--output_dir $(OUT)/dsclap-init-only --save_initial_model $(OUT)/dsclap-init --max_steps 1 --seed 0 \
		--report_to none
	$(PY) benchmarks/turbo_objectives.py --corpus_dir $(OUT)/corpus-default-seed0 \
		--model_name_or_path $(OUT)/dsclap-init --output_dir $(OUT)/turbo-objectives \
		--seeds 0 1 2 --epochs 2 --train_size 400
