#!/usr/bin/env python
"""Fine-tune an audiolang model on a labelled spoken-language task with 🤗 Trainer.

Tasks: ``directed`` (device-directed speech detection: accuracy, FRR, FAR, F1, EER), ``intent`` (15 intents:
accuracy, macro-F1), ``emotion`` (WA, UA), ``valence`` (regression: MAE, Pearson, Acc2, F1), and for CTAL
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
    # k-fold cross-validation (Turbo's protocol: 10 folds, 8 train / 1 validation / 1 test)
    python run_scripts/run_finetune.py --model_type turbo --num_folds 10 ...

The model is evaluated on ``--test_split`` at the end (or on each fold's test fold); results go to
``<output_dir>/finetune_results.json`` (per fold, with mean and standard deviation across folds) and into the
saved model's card. Models that return joint embeddings (Turbo) also report the alignment and uniformity of the
test embeddings and save them to ``test_embeddings.npz``.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, concatenate_datasets
from transformers import AutoProcessor, HfArgumentParser, TrainingArguments, set_seed

from audiolang import (
    TURBO_OBJECTIVES,
    CtalForSequenceClassification,
    CtalForXVector,
    DsclapForSequenceClassification,
    TurboForSequenceClassification,
    TurboProcessor,
)
from audiolang.hub import Result, write_model_card
from audiolang.metrics import alignment, make_compute_metrics, speaker_verification_eer, uniformity
from audiolang.training import (
    TASKS,
    DataCollatorForAudioText,
    ModuleLearningRateTrainer,
    add_length_column,
    collect_outputs,
    configure_logging,
    few_shot,
    load_splits,
    task_dataset,
)

logger = logging.getLogger("run_finetune")
MODEL_CLASSES = {
    "dsclap": DsclapForSequenceClassification,
    "turbo": TurboForSequenceClassification,
    "ctal": CtalForSequenceClassification,
}
# Speaker verification trains a classifier over the training speakers and tests on unseen speakers by cosine
# scoring of the pre-classifier embeddings; only CTAL has that head.
SPEAKER_MODEL_CLASSES = {"ctal": CtalForXVector}
# Families whose configs carry encoder-freezing switches.
FREEZABLE = ("dsclap", "turbo")


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


TEXT_COLUMNS = {"asr": "asr_text", "manual": "text"}
# Trainer.evaluate adds these bookkeeping entries beside the task metrics of compute_metrics.
NOT_METRICS = {"loss", "runtime", "samples_per_second", "steps_per_second", "epoch"}


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((FinetuneArguments, TrainingArguments))
    args, training_args = parser.parse_args_into_dataclasses(args=argv)
    configure_logging(training_args.process_index)
    validate_arguments(args)
    set_seed(training_args.seed)
    training_args.remove_unused_columns = False

    with training_args.main_process_first(desc="dataset preparation"):
        folds, label_names = prepare_folds(args, training_args.seed)

    output_dir = Path(training_args.output_dir)
    runs = []
    for index, splits in enumerate(folds):
        fold_args = training_args
        if len(folds) > 1:
            logger.info("fold %d of %d", index + 1, len(folds))
            fold_args = replace(training_args, output_dir=str(output_dir / f"fold-{index}"))
            set_seed(training_args.seed)
        runs.append(train_and_evaluate(args, fold_args, splits, label_names, save=len(folds) == 1))

    results = summarise(args, training_args, runs)
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
    if args.num_folds < 1:
        raise ValueError(f"--num_folds must be >= 1, got {args.num_folds}")
    if args.num_folds == 2:
        raise ValueError(
            "--num_folds 2 leaves no training fold (one fold tests, the next validates): use 1 or >= 3"
        )


def prepare_folds(args: FinetuneArguments, seed: int) -> tuple[list[DatasetDict], list[str] | None]:
    """The train/validation/test splits of each run: the fixed splits, or k cross-validation folds."""
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
    # group_by_length groups evaluation batches too, so every split needs its lengths.
    splits = DatasetDict({name: add_length_column(split) for name, split in splits.items()})
    if args.num_folds == 1:
        splits[args.train_split] = few_shot(splits[args.train_split], args.train_size, seed)
        # Speaker verification tests on speakers outside the classifier's label set: the trial split has no labels.
        test = (
            add_length_column(data[args.speaker_test_split])
            if args.task == "speaker"
            else splits[args.test_split]
        )
        return [
            DatasetDict(train=splits[args.train_split], validation=splits[args.validation_split], test=test)
        ], label_names
    return k_fold_splits(
        concatenate_datasets(list(splits.values())), args.num_folds, seed, args.train_size
    ), label_names


def k_fold_splits(
    pool: Dataset, num_folds: int, seed: int, train_size: int | None = None
) -> list[DatasetDict]:
    """Seeded k-fold cross-validation: fold i is the test set, fold (i + 1) mod k the validation set, the other
    k - 2 folds the training set (the Turbo paper's 8/1/1 with k = 10). Every row is tested exactly once."""
    if pool.num_rows < num_folds:
        raise ValueError(f"{pool.num_rows} rows cannot make {num_folds} folds")
    order = np.random.default_rng(seed).permutation(pool.num_rows)
    folds = np.array_split(order, num_folds)
    runs = []
    for i in range(num_folds):
        validation = (i + 1) % num_folds
        train = np.concatenate([fold for j, fold in enumerate(folds) if j not in (i, validation)])
        runs.append(
            DatasetDict(
                train=few_shot(pool.select(np.sort(train)), train_size, seed),
                validation=pool.select(np.sort(folds[validation])),
                test=pool.select(np.sort(folds[i])),
            )
        )
    return runs


def load_model(args: FinetuneArguments, label_names: list[str] | None):
    regression = label_names is None
    overrides = {}
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
        overrides.update(num_labels=1, problem_type="regression")
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
    splits: DatasetDict,
    label_names: list[str] | None,
    save: bool,
) -> dict:
    """Fine-tune on ``splits["train"]`` (``validation`` is the Trainer's eval set), test on ``test``."""
    model = load_model(args, label_names)
    processor = load_processor(args)
    collator = DataCollatorForAudioText(
        processor,
        audio_column=args.audio_column,
        text_column=TEXT_COLUMNS[args.text_source],
        label_column="labels",
    )
    rates = {"text_model.": args.text_encoder_learning_rate, "audio_model.": args.audio_encoder_learning_rate}
    trainer = ModuleLearningRateTrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        data_collator=collator,
        compute_metrics=make_compute_metrics(args.task),
        module_learning_rates=rates,
    )
    trainer.train()
    out = Path(training_args.output_dir)
    if args.task == "speaker":
        metrics = speaker_verification(args, trainer, processor, splits)
    else:
        metrics = test_metrics(trainer, splits["test"], out)
    run = {
        "objective": getattr(trainer.model.config, "objective", None),
        "train_size": splits["train"].num_rows,
        "test_size": splits["test"].num_rows,
        **metrics,
    }
    if save and args.save_model and trainer.is_world_process_zero():
        trainer.save_model(str(out))
        processor.save_pretrained(str(out))
        write_card(args, training_args, out, run)
    return run


def test_metrics(trainer, test: Dataset, out: Path) -> dict:
    """The task metrics on the test split; for models with joint embeddings (Turbo) also their alignment and
    uniformity, and the embeddings themselves in ``out/test_embeddings.npz``."""
    prediction = trainer.predict(test, metric_key_prefix="test")
    metrics = {k: v for k, v in prediction.metrics.items() if isinstance(v, (int, float))}
    embeddings = _joint_embeddings(trainer.model, prediction.predictions)
    if embeddings is not None:
        audio, text = embeddings
        metrics["test_alignment"] = alignment(audio, text)
        metrics["test_uniformity_audio"] = uniformity(audio)
        metrics["test_uniformity_text"] = uniformity(text)
        if trainer.is_world_process_zero():
            out.mkdir(parents=True, exist_ok=True)
            np.savez(out / "test_embeddings.npz", audio=audio, text=text, labels=prediction.label_ids)
    return metrics


def speaker_verification(args: FinetuneArguments, trainer, processor, splits: DatasetDict) -> dict:
    """Validation accuracy over the training speakers, then the EER of cosine scoring over every trial pair of the
    unseen speakers' utterances, from the head's pre-classifier embeddings."""
    metrics = {k: v for k, v in trainer.evaluate().items() if isinstance(v, (int, float))}
    (embeddings,) = collect_outputs(
        trainer.model,
        processor,
        splits["test"],
        TEXT_COLUMNS[args.text_source],
        lambda output, batch: (output.embeddings,),
        batch_size=trainer.args.per_device_eval_batch_size,
        audio_column=args.audio_column,
    )
    result = speaker_verification_eer(embeddings.numpy(), splits["test"]["speaker_id"])
    metrics.update(
        test_eer=result.eer,
        test_eer_threshold=result.threshold,
        test_target_trials=result.target_trials,
        test_nontarget_trials=result.nontarget_trials,
    )
    return metrics


def _joint_embeddings(model, predictions) -> tuple[np.ndarray, np.ndarray] | None:
    """The test set's L2-normalised audio and text joint embeddings, for models whose output has them (Turbo:
    predictions are ``(logits, audio_embeds, text_embeds)``)."""
    if not isinstance(model, TurboForSequenceClassification):
        return None
    _, audio, text = predictions[:3]
    return np.asarray(audio), np.asarray(text)


def summarise(args: FinetuneArguments, training_args: TrainingArguments, runs: list[dict]) -> dict:
    results = {
        "model_type": args.model_type,
        "task": args.task,
        "model_name_or_path": args.model_name_or_path,
        "text_source": args.text_source,
        "objective": runs[0]["objective"],
        "seed": training_args.seed,
        "num_folds": args.num_folds,
        "freeze_audio_encoder": args.freeze_audio_encoder,
        "freeze_text_encoder": args.freeze_text_encoder,
    }
    if len(runs) == 1:
        return {**results, **runs[0]}
    keys = [key for key in runs[0] if key.startswith("test_") and key[len("test_") :] not in NOT_METRICS]
    for key in keys:
        values = np.array([run[key] for run in runs], dtype=np.float64)
        results[key] = float(values.mean())
        results[f"{key}_std"] = float(values.std(ddof=1))
    results["folds"] = runs
    return results


def write_card(args: FinetuneArguments, training_args: TrainingArguments, out: Path, run: dict) -> None:
    metrics = [
        Result(args.task, key[len("test_") :], float(value), split=args.test_split)
        for key, value in run.items()
        if key.startswith("test_")
        and key[len("test_") :]
        not in NOT_METRICS | {"size", "eer_threshold", "target_trials", "nontarget_trials"}
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
    )


if __name__ == "__main__":
    main()
    sys.exit(0)
