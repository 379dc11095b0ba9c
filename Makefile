# The README's two commands: `make demo` (the main job on the embedded default) and `make test`.
# Both start with scripts/setup.sh, which installs everything on a fresh Debian machine.
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= out
SEED ?= 0
PRESET ?= default

.PHONY: setup demo test test-slow lint bench turbo-objectives dsclap-whisper app

setup:
	VENV=$(VENV) bash scripts/setup.sh

demo: setup
	$(PY) run_scripts/run_demo.py --preset $(PRESET) --output_dir $(OUT) --seed $(SEED)

# The demo app (http://127.0.0.1:7860) on the folders `make demo` wrote: the fine-tuned classifiers (saved when the
# demo fine-tunes with --save_model true) and the pre-trained DSCLAP model, searching the corpus' test clips.
APP_MODELS ?= $(OUT)/finetune/intent-pretrained $(OUT)/finetune/directed-pretrained $(OUT)/dsclap
app: setup
	$(PY) run_scripts/run_app.py --model $(APP_MODELS) --search_dataset $(OUT)/corpus-$(PRESET)-seed$(SEED) \
		--search_split test --search_size 64

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

# DSCLAP on Whisper base + all-MiniLM-L6-v2, as measured in the README: pre-training (about 15 min on 2 cores), then
# fine-tuning with vs without it at 10%, 25%, 50% and 100% of the labels, 3 seeds (48 runs, about 2.5 h), then
# Turbo's objectives on the same encoders (about 60 min). Resumable: finished runs are reused.
dsclap-whisper: setup
	OMP_NUM_THREADS=2 $(PY) run_scripts/run_pretrain.py --model_type dsclap --preset small \
		--audio_model_name_or_path openai/whisper-base \
		--config_overrides num_frozen_audio_layers=5,freeze_audio_feature_encoder=true \
		--dataset_path $(OUT)/corpus-default-seed0 --output_dir $(OUT)/dsclap-whisper \
		--save_initial_model $(OUT)/dsclap-whisper-init --num_train_epochs 2 --per_device_train_batch_size 32 \
		--per_device_eval_batch_size 32 --learning_rate 1e-3 --audio_encoder_learning_rate 5e-5 \
		--text_encoder_learning_rate 2e-5 --warmup_steps 0.1 --train_sampling_strategy group_by_length \
		--save_strategy steps --save_steps 40 --save_total_limit 2 --logging_steps 5 --report_to none --seed 0
	OMP_NUM_THREADS=2 $(PY) benchmarks/dsclap_label_fractions.py --pretrained $(OUT)/dsclap-whisper \
		--initial $(OUT)/dsclap-whisper-init --corpus_dir $(OUT)/corpus-default-seed0 --seeds 0 1 2 --epochs 3 \
		--freeze_audio_encoder --output_dir $(OUT)/dsclap-whisper-fractions \
		--name dsclap_whisper_label_fractions
	$(PY) benchmarks/turbo_objectives.py --model_name_or_path $(OUT)/dsclap-whisper-init \
		--corpus_dir $(OUT)/corpus-default-seed0 --tasks emotion --seeds 0 1 2 --epochs 2 --train_size 400 \
		--freeze_audio_encoder --output_dir $(OUT)/turbo-whisper --name turbo_whisper_objectives
	$(PY) benchmarks/turbo_objectives.py --model_name_or_path $(OUT)/dsclap-whisper \
		--corpus_dir $(OUT)/corpus-default-seed0 --tasks emotion --objectives vanilla turbo --seeds 0 1 2 --epochs 2 \
		--train_size 400 --freeze_audio_encoder --output_dir $(OUT)/turbo-whisper-dsclap \
		--name turbo_whisper_dsclap_objectives
