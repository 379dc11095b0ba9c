#!/usr/bin/env python
"""Fine-tune an audiolang model on a labelled spoken-language task with 🤗 Trainer.

Tasks: ``directed`` (device-directed speech detection: accuracy, FRR, FAR, F1, EER), ``intent`` (15 intents:
accuracy, macro-F1), ``emotion`` (WA, UA), ``valence`` (regression: MAE, Pearson, Acc2, F1), and for CTAL and lrat
``speaker`` (speaker verification: a classifier over the training speakers, then the EER of cosine scoring over
all trial pairs of ``--speaker_test_split``, speakers never seen in training).

    # DSCLAP (the paper's MDS and MCIC)
    python run_scripts/run_finetune.py --model_name_or_path out/dsclap --task intent \
        --text_source asr --train_size 400 --output_dir out/dsclap-intent --num_train_epochs 5
    # Turbo, from any Turbo folder or from a DSCLAP folder (its encoders), one of three objectives
    python run_scripts/run_finetune.py --model_type turbo --objective turbo \
        --model_name_or_path out/dsclap --task emotion --output_dir out/turbo-emotion
    # CTAL: from a pre-trained folder (or the --save_initial_model baseline), fusion heads
    python run_scripts/run_finetune.py --model_type ctal --model_name_or_path out/ctal --task speaker ...
    # lrat: mean-pooled cross-modal states of both modalities (a classifier, or the speaker head)
    python run_scripts/run_finetune.py --model_type lrat --model_name_or_path out/lrat --task emotion ...
    # k-fold cross-validation (Turbo's protocol: 10 folds, 8 train / 1 validation / 1 test)
    python run_scripts/run_finetune.py --model_type turbo --num_folds 10 ...

The model is evaluated on ``--test_split`` at the end (or on each fold's test fold); results go to
``<output_dir>/finetune_results.json`` (per fold, with mean and standard deviation across folds) and into the
saved model's card. Models that return joint embeddings (Turbo) also report the alignment and uniformity of the
test embeddings and save them to ``test_embeddings.npz``. The model is saved before the test evaluation. Plots go
next to the metrics: ``training_curves.png`` (every loss part, training and validation), and for the test split
``test_confusion_matrix.png`` (classification), ``test_det_roc.png`` (ROC and DET curves with the EER: ``directed``,
and ``speaker``'s trials) or ``test_predicted_vs_true.png`` (``valence``).
A saved classifier serves ``pipeline("audio-text-classification", model=output_dir, trust_remote_code=True)``
(raw audio in, label out); with ``--text_source asr`` the folder records the recogniser that made the training
transcripts (``asr/asr_config.json``, with pocketsphinx's domain language model), which the pipeline runs on clips.

As in ``run_pretrain.py``: re-running a killed command resumes from the last checkpoint in ``--output_dir`` (each
fold's folder under ``--num_folds``); a non-empty ``--output_dir`` that holds anything else is refused unless
``--overwrite_output_dir``, and an ``--output_dir`` equal to ``--model_name_or_path`` always; every clip is checked
before training (``--bad_audio error|skip``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, concatenate_datasets
from transformers import (
    AutoConfig,
    AutoProcessor,
    HfArgumentParser,
    PreTrainedConfig,
    TrainingArguments,
    set_seed,
)

from audiolang import (
    TURBO_OBJECTIVES,
    CtalForSequenceClassification,
    CtalForXVector,
    DsclapForSequenceClassification,
    LratForSequenceClassification,
    LratForXVector,
    TurboForSequenceClassification,
    TurboProcessor,
)
from audiolang.data import CorpusConfig, corpus_dir, corpus_statistics
from audiolang.data.corpus import STATISTICS_COLUMNS
from audiolang.hub import Result, examples_from_dataset, write_model_card
from audiolang.metrics import TRAINER_BOOKKEEPING, make_compute_metrics, summarise_runs
from audiolang.pipelines import corpus_asr, save_asr_config, save_custom_pipeline
from audiolang.plots import write_evaluation_plots, write_training_curves
from audiolang.training import (
    ROW_INDEX_COLUMN,
    TASKS,
    TEXT_COLUMNS,
    AudioTextTrainer,
    DataCollatorForAudioText,
    RunArguments,
    add_length_column,
    add_row_index,
    check_audio,
    check_model_family,
    configure_logging,
    evaluate_test_split,
    few_shot,
    k_fold_splits,
    load_splits,
    min_audio_samples,
    parse_config_overrides,
    resume_checkpoint,
    speaker_verification_metrics,
    task_dataset,
)

logger = logging.getLogger("run_finetune")
MODEL_CLASSES = {
    "dsclap": DsclapForSequenceClassification,
    "turbo": TurboForSequenceClassification,
    "ctal": CtalForSequenceClassification,
    "lrat": LratForSequenceClassification,
}
# Speaker verification trains a classifier over the training speakers and tests on unseen speakers by cosine
# scoring of the pre-classifier embeddings; CTAL and lrat have that head.
SPEAKER_MODEL_CLASSES = {"ctal": CtalForXVector, "lrat": LratForXVector}
# Families whose configs carry encoder-freezing switches.
FREEZABLE = ("dsclap", "turbo")
# The nested encoder configs that --config_overrides reaches as `<name>.<field>=<value>`.
SUB_CONFIGS = ("audio_config", "text_config")
# The families whose saved folders each --model_type fine-tunes: Turbo starts from DSCLAP's encoders too.
SOURCE_FAMILIES = {
    "dsclap": ("dsclap",),
    "turbo": ("turbo", "dsclap"),
    "ctal": ("ctal",),
    "lrat": ("lrat",),
}


@dataclass
class FinetuneArguments:
    model_name_or_path: str = field(metadata={"help": "a saved model folder of the family (or hub id)"})
    model_type: str = field(default="dsclap", metadata={"help": f"one of {sorted(MODEL_CLASSES)}"})
    task: str = field(default="directed", metadata={"help": f"one of {sorted(TASKS)}"})
    text_source: str = field(default="asr", metadata={"help": "asr (the asr_text column) or manual (text)"})
    train_size: int | None = field(
        default=None, metadata={"help": "few-shot: a seeded subset of N training rows"}
    )
    text_encoder_learning_rate: float | None = field(
        default=None, metadata={"help": "learning rate of the text tower (default: --learning_rate)"}
    )
    audio_encoder_learning_rate: float | None = field(
        default=None, metadata={"help": "learning rate of the audio tower (default: --learning_rate)"}
    )
    encoder_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "ctal, lrat: learning rate of the pre-trained encoder (the `ctal.` / `lrat.` parameters), while "
            "the new pooling and classifier layers keep --learning_rate (default: --learning_rate for all)"
        },
    )
    objective: str | None = field(
        default=None,
        metadata={"help": f"turbo only: one of {TURBO_OBJECTIVES} (default: the checkpoint's, else turbo)"},
    )
    classification_weight: float | None = field(
        default=None, metadata={"help": "turbo only: lambda of CE in Eq. 6 (default: the checkpoint's, 0.5)"}
    )
    num_folds: int = field(
        default=1,
        metadata={
            "help": "k > 1: k-fold cross-validation over the pooled --cv_splits (fold i tests, fold i+1 "
            "validates, the rest trains); 1: the fixed train/validation/test splits"
        },
    )
    cv_splits: str = field(
        default="train,validation,test",
        metadata={"help": "comma-separated splits pooled for --num_folds > 1"},
    )
    freeze_audio_encoder: bool = field(default=False)
    freeze_text_encoder: bool = field(default=False)
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "config fields to set, as run_pretrain.py's, e.g. 'num_frozen_audio_layers=4'; a field of the "
            "checkpoint's encoder configs as 'audio_config.<field>' or 'text_config.<field>', e.g. (dsclap, turbo) "
            "'audio_config.use_weighted_layer_sum=true' pools a learned softmax-weighted sum of the audio tower's "
            "layers (the weights train even with --freeze_audio_encoder). Fields that have their own argument "
            "(--objective, --classification_weight, --freeze_*) take that argument"
        },
    )
    dataset_path: str | None = field(
        default=None, metadata={"help": "load_from_disk folder; default: the corpus"}
    )
    corpus_preset: str = field(default="default")
    corpus_dir: str | None = field(default=None)
    corpus_seed: int = field(default=0)
    train_split: str = field(default="train")
    validation_split: str = field(default="validation")
    test_split: str = field(default="test")
    speaker_test_split: str = field(
        default="speaker_test", metadata={"help": "task speaker: the split of unseen speakers for the trials"}
    )
    audio_column: str = field(default="audio")
    save_model: bool = field(default=True, metadata={"help": "save the fine-tuned model and its card"})


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((FinetuneArguments, RunArguments, TrainingArguments))
    args, run_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    configure_logging(training_args.process_index)
    validate_arguments(args)
    check_model_family(args.model_name_or_path, SOURCE_FAMILIES[args.model_type], option="--model_type")
    output_dir = Path(training_args.output_dir)
    fold_dirs = (
        [output_dir] if args.num_folds == 1 else [output_dir / f"fold-{i}" for i in range(args.num_folds)]
    )
    if args.num_folds > 1 and training_args.resume_from_checkpoint:
        raise ValueError(
            "--resume_from_checkpoint names one checkpoint, but with --num_folds each fold resumes from the last "
            "checkpoint of its own folder (<output_dir>/fold-<i>): drop --resume_from_checkpoint."
        )
    checkpoints = [
        resume_checkpoint(
            folder,
            run_args.overwrite_output_dir,
            training_args.resume_from_checkpoint,
            args.model_name_or_path,
        )
        for folder in fold_dirs
    ]
    set_seed(training_args.seed)
    training_args.remove_unused_columns = False
    processor = load_processor(args)

    with training_args.main_process_first(desc="dataset preparation"):
        splits, label_names = load_task_splits(args)
        # The first run's model tells how short a clip its audio encoder can take.
        model = load_model(args, label_names)
        splits = check_audio(
            splits,
            audio_column=args.audio_column,
            sampling_rate=processor.feature_extractor.sampling_rate,
            min_samples=min_audio_samples(processor.feature_extractor, getattr(model, "audio_model", None)),
            bad_audio=run_args.bad_audio,
            num_proc=run_args.preprocessing_num_workers,
        )
        # group_by_length groups evaluation batches too, so every split needs its lengths.
        splits = DatasetDict({name: add_length_column(split) for name, split in splits.items()})
        folds = make_folds(args, splits, training_args.seed)

    runs = []
    for index, (fold, folder, checkpoint) in enumerate(zip(folds, fold_dirs, checkpoints, strict=True)):
        fold_args = training_args
        if len(folds) > 1:
            logger.info("fold %d of %d", index + 1, len(folds))
            fold_args = replace(training_args, output_dir=str(folder))
            set_seed(training_args.seed)
            model = model if index == 0 else load_model(args, label_names)
        runs.append(
            train_and_evaluate(args, fold_args, model, processor, fold, checkpoint, save=len(folds) == 1)
        )

    results = {**run_description(args, training_args, runs[0]), **summarise_runs(runs)}
    if training_args.process_index == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "finetune_results.json").write_text(json.dumps(results, indent=2))
        logger.info("test results: %s", json.dumps({k: v for k, v in results.items() if k != "folds"}))
    return results


def validate_arguments(args: FinetuneArguments) -> None:
    if args.model_type not in MODEL_CLASSES:
        raise ValueError(
            f"--model_type {args.model_type!r} has no fine-tuning yet; choose one of {sorted(MODEL_CLASSES)}"
        )
    if args.text_source not in TEXT_COLUMNS:
        raise ValueError(f"--text_source must be one of {sorted(TEXT_COLUMNS)}, got {args.text_source!r}")
    if args.model_type != "turbo" and (args.objective is not None or args.classification_weight is not None):
        raise ValueError("--objective and --classification_weight apply to --model_type turbo only")
    if args.objective is not None and args.objective not in TURBO_OBJECTIVES:
        raise ValueError(f"--objective must be one of {TURBO_OBJECTIVES}, got {args.objective!r}")
    if args.task == "speaker" and args.model_type not in SPEAKER_MODEL_CLASSES:
        raise ValueError(
            f"--task speaker needs a speaker-verification head: --model_type {sorted(SPEAKER_MODEL_CLASSES)}"
        )
    if args.task == "speaker" and args.num_folds > 1:
        raise ValueError(
            "--task speaker tests on unseen speakers (--speaker_test_split): --num_folds must be 1"
        )
    if args.model_type not in FREEZABLE and (args.freeze_audio_encoder or args.freeze_text_encoder):
        raise ValueError(f"--freeze_* apply to --model_type {FREEZABLE} only")
    if args.model_type in FREEZABLE and args.encoder_learning_rate is not None:
        raise ValueError(
            "--encoder_learning_rate applies to ctal and lrat: the dual encoders take --text_encoder_learning_rate "
            "and --audio_encoder_learning_rate"
        )
    tower_rates = (args.text_encoder_learning_rate, args.audio_encoder_learning_rate)
    if args.model_type not in FREEZABLE and tower_rates != (None, None):
        raise ValueError(
            "--text_encoder_learning_rate and --audio_encoder_learning_rate apply to the dual encoders (dsclap, "
            "turbo): for ctal and lrat, --encoder_learning_rate sets the rate of the pre-trained encoder"
        )
    if args.num_folds < 1:
        raise ValueError(f"--num_folds must be >= 1, got {args.num_folds}")
    if args.num_folds == 2:
        raise ValueError(
            "--num_folds 2 leaves no training fold (one fold tests, the next validates): use 1 or >= 3"
        )


def load_task_splits(args: FinetuneArguments) -> tuple[DatasetDict, list[str] | None]:
    """The splits a run uses, with the task's `labels` and row indices; and the label names (None for
    regression). Speaker verification's trial split has no labels: its speakers are outside the classifier's."""
    if args.task == "speaker":
        names = (args.train_split, args.validation_split)
    elif args.num_folds == 1:
        names = (args.train_split, args.validation_split, args.test_split)
    else:
        names = tuple(name.strip() for name in args.cv_splits.split(",") if name.strip())
    data = load_splits(args.dataset_path, args.corpus_preset, args.corpus_dir, args.corpus_seed)
    wanted = (*names, args.speaker_test_split) if args.task == "speaker" else names
    missing = [name for name in wanted if name not in data]
    if missing:
        raise ValueError(f"split(s) {missing} not in the dataset, which has {sorted(data)}")
    splits, label_names = task_dataset(DatasetDict({name: data[name] for name in names}), args.task)
    if args.task == "speaker":
        splits[args.speaker_test_split] = data[args.speaker_test_split]
    return DatasetDict({name: add_row_index(split) for name, split in splits.items()}), label_names


def make_folds(args: FinetuneArguments, splits: DatasetDict, seed: int) -> list[DatasetDict]:
    """The train/validation/test splits of each run: the fixed splits, or k cross-validation folds."""
    if args.num_folds > 1:
        return k_fold_splits(
            concatenate_datasets(list(splits.values())), args.num_folds, seed, args.train_size
        )
    test = args.speaker_test_split if args.task == "speaker" else args.test_split
    return [
        DatasetDict(
            train=few_shot(splits[args.train_split], args.train_size, seed),
            validation=splits[args.validation_split],
            test=splits[test],
        )
    ]


def config_overrides(args: FinetuneArguments) -> dict[str, Any]:
    """--config_overrides as keyword arguments of `from_pretrained`, each value typed as its field
    (`parse_config_overrides`): `field=value` sets a field of the family's config, `audio_config.field=value` (or
    `text_config.`) a field of the checkpoint's encoder config, given as the partial dict that `from_pretrained`
    merges into that sub-config."""
    if not args.config_overrides:
        return {}
    groups: dict[str, list[str]] = {}
    for item in args.config_overrides.split(","):
        item = item.strip()
        prefix, nested, _ = item.partition("=")[0].partition(".")
        groups.setdefault(prefix if nested else "", []).append(item[len(prefix) + 1 :] if nested else item)
    overrides = parse_config_overrides(
        ",".join(groups.pop("", [])), MODEL_CLASSES[args.model_type].config_class
    )
    checkpoint = AutoConfig.from_pretrained(args.model_name_or_path) if groups else None
    for prefix, fields in groups.items():
        sub_config = getattr(checkpoint, prefix, None)
        if prefix not in SUB_CONFIGS or not isinstance(sub_config, PreTrainedConfig):
            raise ValueError(
                f"--config_overrides: {args.model_name_or_path} has no encoder config {prefix!r} to update; a nested "
                f"field is one of {SUB_CONFIGS} (dsclap, turbo), e.g. 'audio_config.use_weighted_layer_sum=true'"
            )
        overrides[prefix] = parse_config_overrides(",".join(fields), type(sub_config))
    return overrides


def load_model(args: FinetuneArguments, label_names: list[str] | None):
    regression = label_names is None
    overrides = config_overrides(args)
    if args.objective is not None:
        overrides["objective"] = args.objective
    if args.classification_weight is not None:
        overrides["classification_weight"] = args.classification_weight
    if args.model_type in FREEZABLE:
        overrides.update(
            freeze_audio_encoder=args.freeze_audio_encoder, freeze_text_encoder=args.freeze_text_encoder
        )
    classes = SPEAKER_MODEL_CLASSES if args.task == "speaker" else MODEL_CLASSES
    if regression:
        # The one output is named after the task: the pipeline's label for the predicted value.
        overrides.update(
            num_labels=1, problem_type="regression", id2label={0: args.task}, label2id={args.task: 0}
        )
    else:
        # Passing id2label=None for regression would reset num_labels in some configs: only name real classes.
        overrides.update(
            num_labels=len(label_names),
            problem_type="single_label_classification",
            id2label=dict(enumerate(label_names)),
            label2id={name: i for i, name in enumerate(label_names)},
        )
    return classes[args.model_type].from_pretrained(args.model_name_or_path, **overrides)


def load_processor(args: FinetuneArguments):
    processor = AutoProcessor.from_pretrained(args.model_name_or_path)
    if args.model_type == "turbo" and not isinstance(processor, TurboProcessor):
        # Starting from a DSCLAP folder: same inputs, but the fine-tuned folder should name Turbo's processor.
        processor = TurboProcessor(
            processor.feature_extractor, processor.tokenizer, processor.max_text_length
        )
    return processor


def train_and_evaluate(
    args: FinetuneArguments,
    training_args: TrainingArguments,
    model,
    processor,
    splits: DatasetDict,
    checkpoint: str | None,
    save: bool,
) -> dict:
    """Fine-tune on ``splits["train"]`` (``validation`` is the Trainer's eval set), save, then test on ``test``."""
    collator = DataCollatorForAudioText(
        processor,
        audio_column=args.audio_column,
        text_column=TEXT_COLUMNS[args.text_source],
        label_column="labels",
        index_column=ROW_INDEX_COLUMN,
    )
    trainer = AudioTextTrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        data_collator=collator,
        processing_class=processor,
        compute_metrics=make_compute_metrics(args.task),
        module_learning_rates={
            "text_model.": args.text_encoder_learning_rate,
            "audio_model.": args.audio_encoder_learning_rate,
            f"{model.base_model_prefix}.": args.encoder_learning_rate,
        },
    )
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    out = Path(training_args.output_dir)
    if save and args.save_model:
        # Before the test evaluation, so that a failing evaluation never loses the training.
        trainer.save_model()
        if args.task != "speaker" and trainer.is_world_process_zero():
            export_pipeline(args, out)
    metrics = {**train_result.metrics, "train_samples": splits["train"].num_rows}
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()

    if args.task == "speaker":
        metrics, outputs = speaker_verification_metrics(
            trainer,
            processor,
            splits["test"],
            TEXT_COLUMNS[args.text_source],
            args.audio_column,
            return_outputs=True,
        )
        labels, label_names = splits["test"][TASKS["speaker"]], None
    else:
        metrics, prediction = evaluate_test_split(trainer, splits["test"], out, return_outputs=True)
        labels, outputs = prediction.label_ids, prediction.predictions
        config = trainer.model.config
        label_names = (
            None if args.task == "valence" else [config.id2label[i] for i in range(config.num_labels)]
        )
    trainer.log_metrics("test", metrics)
    trainer.save_metrics("test", metrics)
    if trainer.is_world_process_zero():
        write_training_curves(out, title=f"{args.model_type} fine-tuning: {args.task}")
        write_evaluation_plots(args.task, labels, outputs, label_names, out)
    run = {
        "objective": getattr(trainer.model.config, "objective", None),
        "train_size": splits["train"].num_rows,
        "test_size": splits["test"].num_rows,
        **metrics,
    }
    if save and args.save_model and trainer.is_world_process_zero():
        write_card(args, training_args, out, run, splits["test"])
    return run


def run_description(args: FinetuneArguments, training_args: TrainingArguments, first_run: dict) -> dict:
    """What the results file records about the run beside its metrics."""
    return {
        "model_type": args.model_type,
        "task": args.task,
        "model_name_or_path": args.model_name_or_path,
        "text_source": args.text_source,
        "objective": first_run["objective"],
        "seed": training_args.seed,
        "num_folds": args.num_folds,
        "freeze_audio_encoder": args.freeze_audio_encoder,
        "freeze_text_encoder": args.freeze_text_encoder,
        "config_overrides": args.config_overrides,
    }


def export_pipeline(args: FinetuneArguments, out: Path) -> None:
    """Let the saved classifier serve `pipeline("audio-text-classification", model=out, trust_remote_code=True)`, and
    with --text_source asr record the recogniser that made the training transcripts (`asr/asr_config.json`, with
    pocketsphinx's domain language model), which the pipeline runs on clips given without a transcript."""
    save_custom_pipeline(out)
    if args.text_source != "asr":
        return
    corpus = args.dataset_path or corpus_dir(
        CorpusConfig.from_preset(args.corpus_preset, seed=args.corpus_seed), args.corpus_dir
    )
    asr = corpus_asr(corpus)
    if asr is None:
        logger.warning(
            "%s records no recogniser for its asr_text (not an audiolang corpus): the saved pipeline needs a "
            "transcript or asr= per call; record one with audiolang.pipelines.save_asr_config(%r, spec, ...)",
            corpus,
            str(out),
        )
        return
    save_asr_config(out, asr[0], **asr[1])


def write_card(
    args: FinetuneArguments, training_args: TrainingArguments, out: Path, run: dict, test: Dataset
) -> None:
    """The saved model's card: the test metrics, widget clips of the test split, and the measured limits of the
    tested rows (where they carry the corpus' columns)."""
    metrics = [
        Result(args.task, key[len("test_") :], float(value), split=args.test_split)
        for key, value in run.items()
        if key.startswith("test_")
        and key[len("test_") :]
        not in TRAINER_BOOKKEEPING | {"size", "eer_threshold", "target_trials", "nontarget_trials"}
    ]
    write_model_card(
        out,
        family=args.model_type,
        base_models=[args.model_name_or_path],
        datasets=[args.dataset_path or "audiolang embedded in-car corpus"],
        results=metrics,
        pretraining={
            "fine-tuning task": args.task,
            "text source": args.text_source,
            "training rows": run["train_size"],
            "seed": training_args.seed,
            **({"objective": run["objective"]} if run["objective"] else {}),
        },
        examples=examples_from_dataset(
            test, text_column=TEXT_COLUMNS[args.text_source], label_column=TASKS[args.task]
        ),
        corpus_statistics=corpus_statistics(DatasetDict({args.test_split: test}))
        if set(STATISTICS_COLUMNS) <= set(test.column_names)
        else None,
    )


if __name__ == "__main__":
    main()
