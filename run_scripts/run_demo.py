#!/usr/bin/env python
"""The README's main job on the embedded default, end to end:

1. build the in-car corpus (synthetic voices, cabin noise, real offline ASR transcripts);
2. pre-train DSCLAP on the ``pretrain`` split's raw audio and ASR transcripts (no labels, no manual text), from
   pretrained encoders that registry packages carry: Whisper tiny.en's encoder (converted from CTranslate2 on first
   use; its convolution stem and lowest 3 of 4 layers frozen) and all-MiniLM-L6-v2;
3. fine-tune on ``directed`` (MDS) and ``intent`` (MCIC) with ``run_finetune.py``'s default recipe (validation every
   epoch, the best checkpoint kept, early stopping), from the pre-trained model and, as baselines on the same
   splits, transcripts and seed: the very same encoders before pre-training, the pre-trained text tower alone, its
   audio tower alone, and a TF-IDF + logistic regression on the ASR transcripts; the classifiers fine-tuned from
   the pre-trained model are saved (``out/finetune/<task>-pretrained``, with the recogniser that the
   ``audio-text-classification`` pipeline and ``run_app.py`` run on raw audio: ``--inference_asr``);
4. score every model on the robotic-voice ``test`` split and the natural-voice ``test_natural`` split, print and
   save the results table, and write the pre-trained model folder with its model card.

    python run_scripts/run_demo.py --preset default --output_dir out

Each step runs its script in its own process; a step whose results file exists is skipped, so a re-run continues
where an interrupted one stopped (a killed training step resumes from its last checkpoint, if it wrote one).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from audiolang.data import CorpusConfig, build_corpus, corpus_dir, corpus_info, format_statistics, load_corpus
from audiolang.hub import Result, examples_from_dataset, write_model_card
from audiolang.training import configure_logging

SCRIPTS = Path(__file__).resolve().parent
logger = logging.getLogger("run_demo")
# Pre-training: the new parts (projections, temperature) learn at 1e-3; the pretrained towers are wrecked by such a
# rate within steps, so the text tower gets the DSCLAP paper's 2e-5 and Whisper's top layer 5e-5 (see
# audiolang/training/trainer.py). A randomly initialised audio tower (--audio_model "") takes the 1e-3. Fine-tuning
# takes run_finetune.py's default recipe (benchmarks/results/finetune_recipe.md).
PRETRAINED_AUDIO_RATE = ["--audio_encoder_learning_rate", "5e-5"]
LEARNING_RATES = ["--learning_rate", "1e-3", "--text_encoder_learning_rate", "2e-5"]
# The demo's rows: (name, start, classifier_inputs); the TF-IDF baseline is computed in this process.
ARMS = (
    ("DSCLAP pre-trained", "pretrained", "audio_text"),
    ("no pre-training", "baseline", "audio_text"),
    ("text tower alone", "pretrained", "text"),
    ("audio tower alone", "pretrained", "audio"),
)
TFIDF = "TF-IDF + LR (text only)"


@dataclass
class DemoArguments:
    preset: str = field(default="default", metadata={"help": "corpus preset: tiny, default or large"})
    output_dir: str = field(default="out", metadata={"help": "where the corpus, models and results go"})
    seed: int = field(default=0)
    model_preset: str = field(
        default="small",
        metadata={
            "help": "DSCLAP preset: the projection size, and the audio tower when --audio_model is empty"
        },
    )
    audio_model: str = field(
        # tiny.en rather than base: on the corpus it reached higher retrieval after pre-training (R@1 0.58/0.62 vs
        # 0.52/0.53) at a quarter of base's pre-training time (230 s vs 915 s on 2 cores), which keeps `make demo`
        # near 30 minutes (README, "DSCLAP on pretrained encoders").
        default="openai/whisper-tiny.en",
        metadata={
            "help": "pretrained audio encoder (hub id or folder; the Whisper ids resolve to the packaged copies: "
            "openai/whisper-tiny.en, openai/whisper-base); '' for the preset's randomly initialised wav2vec2-style "
            "tower"
        },
    )
    num_frozen_audio_layers: int = field(
        default=3,
        metadata={
            "help": "pre-training: freeze the convolution stem and this many of the pretrained audio encoder's "
            "lowest layers (Whisper tiny.en has 4, base 6); fine-tuning freezes the whole audio tower"
        },
    )
    pretrain_epochs: float = field(default=2.0)
    finetune_epochs: float | None = field(
        default=None,
        metadata={"help": "at most this many fine-tuning epochs (default: run_finetune.py's recipe)"},
    )
    inference_asr: str = field(
        default="whisper-tiny.en",
        metadata={
            "help": "the recogniser the saved classifiers' pipeline runs on raw audio (benchmarks/results/"
            "bench_recognisers.jsonl: the best raw-audio accuracy on natural speech); '' keeps the training one"
        },
    )
    natural_split: str = field(default="test_natural", metadata={"help": "'' skips the natural-voice scores"})
    parallel_jobs: int = field(
        default=2, metadata={"help": "fine-tuning processes at a time (one thread each when more than one)"}
    )
    batch_size: int = field(default=32)
    tasks: str = field(default="directed,intent")


def _common(args: DemoArguments, output_dir: Path, epochs: float | None) -> list[str]:
    return [
        "--output_dir", str(output_dir),
        "--seed", str(args.seed),
        *(["--num_train_epochs", str(epochs)] if epochs is not None else []),
        "--per_device_train_batch_size", str(args.batch_size),
        "--per_device_eval_batch_size", str(args.batch_size),
        "--report_to", "none",
        "--logging_steps", "20",
        "--disable_tqdm", "false",
        "--dataloader_pin_memory", "false",
        "--train_sampling_strategy", "group_by_length",
        "--dataloader_num_workers", "0",
    ]  # fmt: skip


def format_results(rows: list[dict], natural_split: str | None) -> str:
    """The demo's table: every model of a task beside its baselines, on the robotic-voice test split and, when the
    corpus has one, the natural-voice split."""
    natural = f" | {natural_split} accuracy" if natural_split else ""
    lines = [
        f"| task | model | test accuracy | FRR | EER | macro-F1{natural} |",
        "|---|---|---|---|---|---|" + ("---|" if natural_split else ""),
    ]
    for r in rows:
        cells = [
            f"{r[key]:.3f}" if key in r else "-"
            for key in ("test_accuracy", "test_frr", "test_eer", "test_macro_f1")
        ]
        if natural_split:
            cells.append(f"{r['natural_accuracy']:.3f}" if "natural_accuracy" in r else "-")
        lines.append(f"| {r['task']} | {r['init']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tfidf_row(corpus: Path, task: str, seed: int, natural: str | None) -> dict:
    """The ten-line baseline on the same rows and ASR transcripts as the fine-tuned models: TF-IDF word and character
    n-grams + logistic regression (`audiolang.baselines.tfidf_split_metrics`)."""
    from audiolang.baselines import tfidf_split_metrics
    from audiolang.training import DatasetArguments

    scores = tfidf_split_metrics(
        DatasetArguments(dataset_path=str(corpus)), ("test", *([natural] if natural else [])), task, seed=seed
    )
    row = dict(scores["test"])
    if natural:
        row["natural_accuracy"] = scores[natural]["test_accuracy"]
    return row


def run_in_parallel(script: str, jobs: list[tuple], parallel_jobs: int) -> dict:
    """`run_script` for every `(key, results_file, argv)` job, `parallel_jobs` processes at a time, each on one thread
    when several run (the small models of the demo gain more from two processes than from two threads each); each
    job's output goes to `<its folder>.log` beside it (the folder itself must hold only the run's own files), and one
    line per job says when it starts and ends."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if parallel_jobs > 1 else None

    def run(job: tuple) -> tuple:
        key, results_file, argv = job
        step = time.perf_counter()
        if not results_file.is_file():
            log_file = results_file.parent.with_name(results_file.parent.name + ".log")
            log_file.parent.mkdir(parents=True, exist_ok=True)
            print(f"[fine-tuning] {' / '.join(key)}: started (log: {log_file})", flush=True)
            with log_file.open("w") as log:
                done = subprocess.run(
                    [sys.executable, str(SCRIPTS / script), *argv],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            if done.returncode != 0:
                tail = "".join(log_file.read_text().splitlines(keepends=True)[-15:])
                raise RuntimeError(f"fine-tuning {' / '.join(key)} failed; the end of {log_file}:\n{tail}")
            print(f"[fine-tuning] {' / '.join(key)}: done in {time.perf_counter() - step:.0f} s", flush=True)
        return key, json.loads(results_file.read_text())

    with ThreadPoolExecutor(max_workers=max(1, parallel_jobs)) as pool:
        return dict(pool.map(run, jobs))


def run_script(script: str, results_file: Path, argv: list[str]) -> dict:
    """Run one of the run scripts in its own process and return the results it saved; a step whose results file
    exists already ran (a re-run of the demo continues where it stopped)."""
    if results_file.is_file():
        logger.info("%s exists: skipping that step", results_file)
    else:
        subprocess.run([sys.executable, str(SCRIPTS / script), *argv], check=True)
    return json.loads(results_file.read_text())


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    (args,) = HfArgumentParser(DemoArguments).parse_args_into_dataclasses(args=argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    config = CorpusConfig.from_preset(args.preset, seed=args.seed)
    corpus = corpus_dir(config, out / f"corpus-{args.preset}-seed{args.seed}")
    build_corpus(config=config, output_dir=corpus)
    stats = corpus_info(corpus)["statistics"]
    timings["corpus_s"] = time.perf_counter() - start
    print(
        f"\n== corpus ({args.preset}, seed {args.seed}) at {corpus}\n{format_statistics(stats)}\n", flush=True
    )

    start = time.perf_counter()
    pretrained, initial = out / "dsclap", out / "dsclap-init"
    audio_tower, finetune_audio = [], []
    if args.audio_model:
        audio_tower = [
            "--audio_model_name_or_path",
            args.audio_model,
            "--config_overrides",
            f"num_frozen_audio_layers={args.num_frozen_audio_layers},freeze_audio_feature_encoder=true",
            *PRETRAINED_AUDIO_RATE,
        ]
        # A frozen pretrained tower: fine-tuning a few hundred labels then costs a forward pass of it per clip.
        finetune_audio = ["--freeze_audio_encoder", "true"]
    pretrain = run_script(
        "run_pretrain.py",
        pretrained / "pretrain_results.json",
        [
            "--model_type",
            "dsclap",
            "--preset",
            args.model_preset,
            "--dataset_path",
            str(corpus),
            "--save_initial_model",
            str(initial),
            *LEARNING_RATES,
            *audio_tower,
            "--warmup_steps",
            "0.1",
            "--save_strategy",
            "no",
            *_common(args, pretrained, args.pretrain_epochs),
        ],
    )
    timings["pretrain_s"] = time.perf_counter() - start

    natural = args.natural_split if args.natural_split in load_corpus(corpus) else None
    jobs = []
    for task in args.tasks.split(","):
        for name, start, inputs in ARMS:
            folder = (
                out / "finetune" / (f"{task}-{start}" if inputs == "audio_text" else f"{task}-{inputs}-tower")
            )
            keep = name == "DSCLAP pre-trained"
            argv = [
                "--model_name_or_path", str(pretrained if start == "pretrained" else initial),
                "--task", task,
                "--dataset_path", str(corpus),
                "--text_source", "asr",
                "--config_overrides", f"classifier_inputs={inputs}",
                *finetune_audio,
                *(["--extra_test_split_names", natural] if natural else []),
                # the pre-trained start's classifiers are what a user keeps (pipeline, app); the baselines are
                # only a comparison
                "--save_model", str(keep).lower(),
                *(["--inference_asr", args.inference_asr] if keep and args.inference_asr else []),
                *_common(args, folder, args.finetune_epochs),
            ]  # fmt: skip
            jobs.append(((task, name), folder / "finetune_results.json", argv))
    start_time = time.perf_counter()
    results = run_in_parallel("run_finetune.py", jobs, args.parallel_jobs)
    timings["finetune_s"] = time.perf_counter() - start_time
    rows = []
    for task in args.tasks.split(","):
        for name, _, _ in ARMS:
            result = results[(task, name)]
            if natural:
                result["natural_accuracy"] = result[f"{natural}_accuracy"]
            rows.append({"init": name, **result})
        rows.append({"init": TFIDF, "task": task, **tfidf_row(corpus, task, args.seed, natural)})

    table = format_results(rows, natural)
    results = {
        "corpus": stats,
        "pretrain": pretrain,
        "finetune": rows,
        "timings_s": timings,
        "args": vars(args),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(table + "\n")
    write_model_card(
        pretrained,
        family="dsclap",
        base_models=[m for m in (args.audio_model, "sentence-transformers/all-MiniLM-L6-v2") if m],
        datasets=[f"audiolang embedded in-car corpus ({args.preset}, seed {args.seed})"],
        results=[
            Result(r["task"], k[len("test_") :], r[k])
            for r in rows
            if r["init"] == "DSCLAP pre-trained"
            for k in ("test_accuracy", "test_frr", "test_macro_f1")
            if k in r
        ]
        + [
            Result("retrieval", k[len("eval_") :], v, split="validation")
            for k, v in pretrain.items()
            if k.startswith("eval_") and "r@" in k
        ],
        pretraining={
            "data": f"{pretrain['train_rows']} clips of the pretrain split: raw audio + pocketsphinx transcripts",
            "epochs": args.pretrain_epochs,
            "batch size": args.batch_size,
            "train loss": round(pretrain["train_loss"], 4),
        },
        description="Pre-trained by `make demo` on the synthetic in-car corpus; the downstream figures come from "
        "fine-tuning this checkpoint (see the table) and are compared in the audiolang README with the "
        "same encoders before pre-training.",
        examples=examples_from_dataset(load_corpus(corpus)["test"], label_column="intent"),
        corpus_statistics=stats,
    )
    print(f"\n== results (test split, ASR transcripts, seed {args.seed})\n{table}")
    print(f"\n== timings: {json.dumps({k: round(v) for k, v in timings.items()})}")
    print(f"== model folder with card: {pretrained}")


if __name__ == "__main__":
    main()
