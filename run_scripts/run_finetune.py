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
    EarlyStoppingCallback,
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
from audiolang.pipelines import corpus_asr, save_asr_config, save_custom_pipeline, save_inference_asr
from audiolang.plots import write_evaluation_plots, write_training_curves
from audiolang.training import (
    BEST_MODEL_METRICS,
    EARLY_STOPPING_PATIENCE,
    ROW_INDEX_COLUMN,
    TASK_TYPES,
    TASKS,
    TEXT_COLUMNS,
    TEXT_ENCODER_LEARNING_RATE,
    AudioTextTrainer,
    DataCollatorForAudioText,
    DatasetArguments,
    FinetuneTrainingArguments,
    RunArguments,
    TaskSpec,
    add_length_column,
    add_row_index,
    cache_frozen_audio,
    check_audio,
    check_model_family,
    configure_logging,
    data_fingerprint,
    ensure_text_column,
    evaluate_test_split,
    few_shot,
    frozen_audio_cache_blocker,
    k_fold_splits,
    load_labelled_splits,
    min_audio_samples,
    parse_config_overrides,
    resolve_task,
    resume_checkpoint,
    run_record,
    speaker_verification_metrics,
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
    task: str | None = field(
        default=None,
        metadata={
            "help": f"a shorthand for one of the embedded corpus' label columns, one of {sorted(TASKS)} (default "
            "without --label_column_name: directed)"
        },
    )
    label_column_name: str | None = field(
        default=None,
        metadata={
            "help": "your dataset's label column (instead of --task): strings, integers or a ClassLabel classify "
            "(the names become the model's id2label), floats regress"
        },
    )
    task_type: str | None = field(
        default=None,
        metadata={"help": f"one of {TASK_TYPES} (default: inferred from the label column)"},
    )
    text_column_name: str | None = field(
        default=None,
        metadata={
            "help": "the transcripts the model reads (default: --text_source's column of the corpus); a dataset "
            "without this column is transcribed with --asr",
            "aliases": ["--text_column"],
        },
    )
    text_source: str = field(
        default="asr",
        metadata={"help": "the corpus' transcripts: asr (the asr_text column) or manual (text)"},
    )
    asr: str = field(
        default="whisper-tiny.en",
        metadata={
            "help": "the recogniser (an audiolang.load_asr spec) that transcribes a dataset without text"
        },
    )
    inference_asr: str | None = field(
        default=None,
        metadata={
            "help": "the recogniser (an audiolang.load_asr spec) that the saved pipeline runs on raw audio, when it "
            "should differ from the one that made the training transcripts (recorded in asr/inference/)"
        },
    )
    trial_split_name: str = field(
        default="speaker_test",
        metadata={
            "help": "speaker verification: the split of unseen speakers whose trials are scored",
            "aliases": ["--speaker_test_split"],
        },
    )
    early_stopping_patience: int = field(
        default=EARLY_STOPPING_PATIENCE,
        metadata={
            "help": "stop after this many evaluations without a better --metric_for_best_model (0: never); the best "
            "checkpoint is kept (--load_best_model_at_end)"
        },
    )
    train_size: int | None = field(
        default=None, metadata={"help": "few-shot: a seeded subset of N training rows"}
    )
    text_encoder_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": f"learning rate of the text tower (dsclap, turbo; default: the recipe's {TEXT_ENCODER_LEARNING_RATE})"
        },
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
    save_model: bool = field(default=True, metadata={"help": "save the fine-tuned model and its card"})
    cache_frozen_audio: bool = field(
        default=True,
        metadata={
            "help": "with a frozen audio tower without dropout, compute its pooled output once per clip of the "
            "training and validation splits instead of once per clip and epoch (the test split still runs the "
            "tower)"
        },
    )
    extra_test_split_names: list[str] | None = field(
        default=None,
        metadata={
            "help": "more splits to score the final model on after --test_split_name, each reported as "
            "<split>_<metric> (e.g. the corpus' natural-voice test_natural)",
            "nargs": "+",
        },
    )
    evaluate_test: bool = field(
        default=True,
        metadata={
            "help": "evaluate the test split at the end; a search over settings turns it off, so that the test "
            "split is read once, by the chosen recipe"
        },
    )


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((FinetuneArguments, DatasetArguments, RunArguments, FinetuneTrainingArguments))
    args, data_args, run_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    configure_logging(training_args.process_index)
    validate_arguments(args)
    spec = resolve_task(args.task, args.label_column_name, args.task_type)
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
    # What makes this run's checkpoints: a checkpoint of another run in --output_dir is not resumed.
    record = run_record(
        training_args,
        model_name_or_path=args.model_name_or_path,
        model_type=args.model_type,
        task=spec.name or None,
        label_column_name=spec.label_column,
        task_type=args.task_type,
        text_column_name=args.text_column_name or TEXT_COLUMNS.get(args.text_source),
        train_size=args.train_size,
        num_folds=args.num_folds,
        dataset=data_fingerprint(data_args),
        train_split_name=data_args.train_split_name,
    )
    checkpoints = [
        resume_checkpoint(
            folder,
            run_args.overwrite_output_dir,
            training_args.resume_from_checkpoint,
            args.model_name_or_path,
            record=record,
        )
        for folder in fold_dirs
    ]
    set_seed(training_args.seed)
    training_args.remove_unused_columns = False
    processor = load_processor(args)

    with training_args.main_process_first(desc="dataset preparation"):
        splits, spec, label_names = load_task_splits(
            args, data_args, spec, processor.feature_extractor.sampling_rate, training_args.seed
        )
        text_column = args.text_column_name or TEXT_COLUMNS[args.text_source]
        splits = ensure_text_column(
            splits, text_column, data_args.audio_column_name, args.asr, run_args.preprocessing_num_workers
        )
        # The first run's model tells how short a clip its audio encoder can take.
        model = load_model(args, spec, label_names)
        splits = check_audio(
            splits,
            audio_column=data_args.audio_column_name,
            sampling_rate=processor.feature_extractor.sampling_rate,
            min_samples=min_audio_samples(processor.feature_extractor, getattr(model, "audio_model", None)),
            bad_audio=run_args.bad_audio,
            num_proc=run_args.preprocessing_num_workers,
        )
        # group_by_length groups evaluation batches too, so every split needs its lengths.
        splits = DatasetDict(
            {name: add_length_column(split, data_args.audio_column_name) for name, split in splits.items()}
        )
        splits = cache_audio(args, data_args, spec, model, processor, splits, text_column, training_args)
        folds = make_folds(args, data_args, spec, splits, training_args.seed)
    apply_recipe(training_args, spec, args)
    run = FinetuneRun(args, data_args, spec, text_column)

    runs = []
    for index, (fold, folder, checkpoint) in enumerate(zip(folds, fold_dirs, checkpoints, strict=True)):
        fold_args = training_args
        if len(folds) > 1:
            logger.info("fold %d of %d", index + 1, len(folds))
            fold_args = replace(training_args, output_dir=str(folder))
            set_seed(training_args.seed)
            model = model if index == 0 else load_model(args, spec, label_names)
        runs.append(
            train_and_evaluate(run, fold_args, model, processor, fold, checkpoint, save=len(folds) == 1)
        )

    results = {**run_description(run, training_args, runs[0]), **summarise_runs(runs)}
    if training_args.process_index == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "finetune_results.json").write_text(json.dumps(results, indent=2))
        logger.info("test results: %s", json.dumps({k: v for k, v in results.items() if k != "folds"}))
    return results


@dataclass
class FinetuneRun:
    """What a fine-tuning run's steps share: its arguments, the resolved task and the transcript column."""

    args: FinetuneArguments
    data_args: DatasetArguments
    spec: TaskSpec
    text_column: str


def cache_audio(
    args: FinetuneArguments,
    data_args: DatasetArguments,
    spec: TaskSpec,
    model,
    processor,
    splits: DatasetDict,
    text_column: str,
    training_args: TrainingArguments,
) -> DatasetDict:
    """`--cache_frozen_audio`: the frozen audio tower's pooled output of every clip the training loop reads
    (`cache_frozen_audio`), when the model allows it; the test split keeps its audio (all splits under k folds,
    whose test folds come from them)."""
    if not args.cache_frozen_audio:
        return splits
    blocker = frozen_audio_cache_blocker(model)
    if blocker is not None:
        logger.info("the audio tower runs every epoch: %s", blocker)
        return splits
    test = args.trial_split_name if spec.task_type == "speaker_verification" else data_args.test_split_name
    scored = {test, *(args.extra_test_split_names or ())}
    cached = {
        name: split
        if args.num_folds == 1 and name in scored
        else cache_frozen_audio(
            model,
            processor,
            split,
            text_column,
            data_args.audio_column_name,
            batch_size=training_args.per_device_eval_batch_size,
            progress=f"frozen audio tower: {name}",
        )
        for name, split in splits.items()
    }
    logger.info("the frozen audio tower ran once per clip of %s", [n for n in cached if n not in scored])
    return DatasetDict(cached)


def apply_recipe(training_args: TrainingArguments, spec: TaskSpec, args: FinetuneArguments) -> None:
    """The default recipe's choices that depend on the task: the metric that picks the best checkpoint (unless
    --metric_for_best_model names one) and early stopping (`build_callbacks`)."""
    if training_args.load_best_model_at_end and training_args.metric_for_best_model in (None, "loss"):
        metric, greater = BEST_MODEL_METRICS[spec.name]
        training_args.metric_for_best_model = metric
        training_args.greater_is_better = greater
        logger.info(
            "the best checkpoint by validation %s (%s is better)", metric, "higher" if greater else "lower"
        )


def build_callbacks(training_args: TrainingArguments, args: FinetuneArguments) -> list:
    if args.early_stopping_patience > 0 and training_args.load_best_model_at_end:
        return [EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience)]
    return []


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
    verification = args.task == "speaker" or args.task_type == "speaker_verification"
    if verification and args.model_type not in SPEAKER_MODEL_CLASSES:
        raise ValueError(
            f"speaker verification needs a speaker-verification head: --model_type {sorted(SPEAKER_MODEL_CLASSES)}"
        )
    if verification and args.num_folds > 1:
        raise ValueError(
            "speaker verification tests on unseen speakers (--trial_split_name): --num_folds must be 1"
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
    if args.model_type in FREEZABLE and args.text_encoder_learning_rate is None:
        # The recipe's rate for a pretrained text tower (benchmarks/results/finetune_recipe.md).
        args.text_encoder_learning_rate = TEXT_ENCODER_LEARNING_RATE
    if args.extra_test_split_names and (verification or args.num_folds > 1):
        raise ValueError(
            "--extra_test_split_names applies to classification and regression with --num_folds 1"
        )
    if args.early_stopping_patience < 0:
        raise ValueError(f"--early_stopping_patience must be >= 0, got {args.early_stopping_patience}")
    if args.num_folds < 1:
        raise ValueError(f"--num_folds must be >= 1, got {args.num_folds}")
    if args.num_folds == 2:
        raise ValueError(
            "--num_folds 2 leaves no training fold (one fold tests, the next validates): use 1 or >= 3"
        )


def load_task_splits(
    args: FinetuneArguments, data_args: DatasetArguments, spec: TaskSpec, sampling_rate: int, seed: int
) -> tuple[DatasetDict, TaskSpec, list[str] | None]:
    """The splits a run uses, with the task's `labels` and row indices; the task with its type resolved; and the
    label names (None for regression). A dataset without validation or test split gets them from its training split
    (seeded, stratified by label). Speaker verification's trial split has no labels: its speakers are outside the
    classifier's."""
    trials: tuple[str, ...] = ()
    if spec.task_type == "speaker_verification":
        names: tuple[str, ...] = (data_args.train_split_name, data_args.validation_split_name)
        trials = (args.trial_split_name,)
        make = (data_args.validation_split_name,)
    elif args.num_folds == 1:
        names = (
            data_args.train_split_name,
            data_args.validation_split_name,
            data_args.test_split_name,
            *(args.extra_test_split_names or ()),
        )
        make = (data_args.validation_split_name, data_args.test_split_name)
    else:
        names = tuple(name.strip() for name in args.cv_splits.split(",") if name.strip())
        make = ()
    splits, spec, label_names = load_labelled_splits(
        data_args, spec, (*names, *trials), sampling_rate, seed, make_missing=make, unlabelled_splits=trials
    )
    return DatasetDict({name: add_row_index(split) for name, split in splits.items()}), spec, label_names


def make_folds(
    args: FinetuneArguments, data_args: DatasetArguments, spec: TaskSpec, splits: DatasetDict, seed: int
) -> list[DatasetDict]:
    """The train/validation/test splits of each run: the fixed splits, or k cross-validation folds."""
    if args.num_folds > 1:
        return k_fold_splits(
            concatenate_datasets(list(splits.values())), args.num_folds, seed, args.train_size
        )
    test = args.trial_split_name if spec.task_type == "speaker_verification" else data_args.test_split_name
    return [
        DatasetDict(
            train=few_shot(splits[data_args.train_split_name], args.train_size, seed),
            validation=splits[data_args.validation_split_name],
            test=splits[test],
            **{name: splits[name] for name in args.extra_test_split_names or ()},
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


def load_model(args: FinetuneArguments, spec: TaskSpec, label_names: list[str] | None):
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
    classes = SPEAKER_MODEL_CLASSES if spec.task_type == "speaker_verification" else MODEL_CLASSES
    if regression:
        # The one output is named after the label column: the pipeline's label for the predicted value.
        name = spec.label_column
        overrides.update(num_labels=1, problem_type="regression", id2label={0: name}, label2id={name: 0})
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
    run: FinetuneRun,
    training_args: TrainingArguments,
    model,
    processor,
    splits: DatasetDict,
    checkpoint: str | None,
    save: bool,
) -> dict:
    """Fine-tune on ``splits["train"]`` (``validation`` is the Trainer's eval set), save, then test on ``test``."""
    args, spec = run.args, run.spec
    audio_column = run.data_args.audio_column_name
    collator = DataCollatorForAudioText(
        processor,
        audio_column=audio_column,
        text_column=run.text_column,
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
        compute_metrics=make_compute_metrics(spec.name),
        callbacks=build_callbacks(training_args, args),
        module_learning_rates={
            "text_model.": args.text_encoder_learning_rate,
            "audio_model.": args.audio_encoder_learning_rate,
            f"{model.base_model_prefix}.": args.encoder_learning_rate,
        },
    )
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    out = Path(training_args.output_dir)
    verification = spec.task_type == "speaker_verification"
    if save and args.save_model:
        # Before the test evaluation, so that a failing evaluation never loses the training.
        trainer.save_model()
        if not verification and trainer.is_world_process_zero():
            export_pipeline(run, out)
    metrics = {**train_result.metrics, **best_checkpoint(trainer), "train_samples": splits["train"].num_rows}
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    result = {
        "objective": getattr(trainer.model.config, "objective", None),
        "train_size": splits["train"].num_rows,
        "test_size": splits["test"].num_rows,
        "epochs_trained": trainer.state.epoch,
        **best_checkpoint(trainer),
    }
    if not args.evaluate_test:
        # A search over settings: the kept model's validation scores only, the test split unread.
        metrics = trainer.evaluate()
        trainer.save_metrics("eval", metrics)
        if trainer.is_world_process_zero():
            write_training_curves(out, title=f"{args.model_type} fine-tuning: {spec.label_column}")
        return {**result, **metrics}

    if verification:
        metrics, outputs = speaker_verification_metrics(
            trainer,
            processor,
            splits["test"],
            run.text_column,
            audio_column,
            speaker_column=spec.label_column,
            return_outputs=True,
        )
        labels, label_names = splits["test"][spec.label_column], None
    else:
        metrics, prediction = evaluate_test_split(trainer, splits["test"], out, return_outputs=True)
        labels, outputs = prediction.label_ids, prediction.predictions
        config = trainer.model.config
        label_names = (
            None if spec.task_type == "regression" else [config.id2label[i] for i in range(config.num_labels)]
        )
    for name in args.extra_test_split_names or ():
        extra = evaluate_test_split(trainer, splits[name], out, metric_key_prefix=name)
        extra[f"{name}_size"] = splits[name].num_rows
        metrics.update(extra)
    trainer.log_metrics("test", metrics)
    trainer.save_metrics("test", metrics)
    if trainer.is_world_process_zero():
        write_training_curves(out, title=f"{args.model_type} fine-tuning: {spec.label_column}")
        write_evaluation_plots(spec.name, labels, outputs, label_names, out)
    result.update(metrics)
    if save and args.save_model and trainer.is_world_process_zero():
        write_card(run, training_args, out, result, splits["test"])
    return result


def best_epoch(state) -> float | None:
    """The epoch of the checkpoint `load_best_model_at_end` kept (from the evaluation log)."""
    if state.best_model_checkpoint is None:
        return None
    step = int(state.best_model_checkpoint.rstrip("/").split("-")[-1])
    return next((entry["epoch"] for entry in state.log_history if entry.get("step") == step), None)


def best_checkpoint(trainer) -> dict:
    """The kept checkpoint's validation score and epoch (`load_best_model_at_end`), which the results record beside
    the test scores; empty without one."""
    key = trainer.args.metric_for_best_model
    if key is None or trainer.state.best_metric is None:
        return {}
    return {
        f"best_eval_{key.removeprefix('eval_')}": trainer.state.best_metric,
        "best_epoch": best_epoch(trainer.state),
    }


def run_description(run: FinetuneRun, training_args: TrainingArguments, first_run: dict) -> dict:
    """What the results file records about the run beside its metrics."""
    args, data_args = run.args, run.data_args
    return {
        "model_type": args.model_type,
        "task": run.spec.name,
        "task_type": run.spec.task_type,
        "label_column": run.spec.label_column,
        "text_column": run.text_column,
        "model_name_or_path": args.model_name_or_path,
        "dataset": dataset_description(data_args),
        "text_source": args.text_source,
        "objective": first_run["objective"],
        "seed": training_args.seed,
        "num_folds": args.num_folds,
        "freeze_audio_encoder": args.freeze_audio_encoder,
        "freeze_text_encoder": args.freeze_text_encoder,
        "config_overrides": args.config_overrides,
        "learning_rate": training_args.learning_rate,
        "text_encoder_learning_rate": args.text_encoder_learning_rate,
        "audio_encoder_learning_rate": args.audio_encoder_learning_rate,
        "num_train_epochs": training_args.num_train_epochs,
        "early_stopping_patience": args.early_stopping_patience,
        "metric_for_best_model": training_args.metric_for_best_model,
    }


def dataset_description(data_args: DatasetArguments) -> str:
    if data_args.dataset_name or data_args.data_files:
        parts = [data_args.dataset_name or "", data_args.dataset_config_name or ""]
        parts += [f"data_dir={data_args.data_dir}"] if data_args.data_dir else []
        parts += [f"data_files={' '.join(data_args.data_files)}"] if data_args.data_files else []
        return " ".join(part for part in parts if part)
    return data_args.dataset_path or f"audiolang embedded in-car corpus ({data_args.corpus_preset})"


def export_pipeline(run: FinetuneRun, out: Path) -> None:
    """Let the saved classifier serve `pipeline("audio-text-classification", model=out, trust_remote_code=True)`, and
    record the recogniser that made the training transcripts (`asr/asr_config.json`, with pocketsphinx's domain
    language model), which the pipeline runs on clips given without a transcript: the corpus' recogniser for its
    `asr_text`, or --asr when the run transcribed the data itself."""
    save_custom_pipeline(out)
    args, data_args = run.args, run.data_args
    if args.inference_asr is not None:
        save_inference_asr(out, args.inference_asr)
    if run.text_column == TEXT_COLUMNS["manual"] and not (data_args.dataset_name or data_args.data_files):
        return
    corpus = None
    if not (data_args.dataset_name or data_args.data_files):
        corpus = data_args.dataset_path or corpus_dir(
            CorpusConfig.from_preset(data_args.corpus_preset, seed=data_args.corpus_seed),
            data_args.corpus_dir,
        )
    asr = corpus_asr(corpus) if corpus is not None else None
    if asr is None:
        # Not an audiolang corpus: the transcripts were the user's own, or --asr made them (ensure_text_column).
        logger.info(
            "recording --asr %s as the pipeline's recogniser for clips without a transcript", args.asr
        )
        save_asr_config(out, args.asr)
        return
    save_asr_config(out, asr[0], **asr[1])


def write_card(
    run: FinetuneRun, training_args: TrainingArguments, out: Path, result: dict, test: Dataset
) -> None:
    """The saved model's card: the test metrics, widget clips of the test split, and the measured limits of the
    tested rows (where they carry the corpus' columns)."""
    args, spec, data_args = run.args, run.spec, run.data_args
    metrics = [
        Result(spec.name, key[len("test_") :], float(value), split=data_args.test_split_name)
        for key, value in result.items()
        if key.startswith("test_")
        and key[len("test_") :]
        not in TRAINER_BOOKKEEPING | {"size", "eer_threshold", "target_trials", "nontarget_trials"}
    ]
    write_model_card(
        out,
        family=args.model_type,
        base_models=[args.model_name_or_path],
        datasets=[dataset_description(data_args)],
        results=metrics,
        pretraining={
            "fine-tuning task": spec.name,
            "label column": spec.label_column,
            "text column": run.text_column,
            **({"recogniser on raw audio": args.inference_asr} if args.inference_asr else {}),
            "training rows": result["train_size"],
            "seed": training_args.seed,
            **({"objective": result["objective"]} if result["objective"] else {}),
        },
        examples=examples_from_dataset(
            test,
            text_column=run.text_column,
            label_column=spec.label_column,
            audio_column=data_args.audio_column_name,
        ),
        corpus_statistics=corpus_statistics(DatasetDict({data_args.test_split_name: test}))
        if set(STATISTICS_COLUMNS) <= set(test.column_names)
        else None,
    )


if __name__ == "__main__":
    main()
