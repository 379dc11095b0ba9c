#!/usr/bin/env python
"""Fine-tune an audiolang model on a labelled spoken-language task with 🤗 Trainer.

DSCLAP tasks (the paper's MDS and MCIC): ``--task directed`` (device-directed speech detection: accuracy,
false-rejection rate) and ``--task intent`` (15 intents: accuracy, macro-F1); ``emotion`` and ``valence``
work too.

    python run_scripts/run_finetune.py --model_name_or_path out/dsclap --task intent \
        --text_source asr --train_size 400 --output_dir out/dsclap-intent --num_train_epochs 5

The model is evaluated on ``--test_split`` at the end; results go to ``<output_dir>/finetune_results.json``
and into the saved model's card.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from datasets import DatasetDict
from transformers import AutoProcessor, HfArgumentParser, TrainingArguments, set_seed

from audiolang import DsclapForSequenceClassification
from audiolang.hub import Result, write_model_card
from audiolang.metrics import make_compute_metrics
from audiolang.training import (
    TASKS,
    DataCollatorForAudioText,
    ModuleLearningRateTrainer,
    add_length_column,
    configure_logging,
    few_shot,
    load_splits,
    task_dataset,
)

logger = logging.getLogger("run_finetune")
MODEL_CLASSES = {"dsclap": DsclapForSequenceClassification}


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
    audio_column: str = field(default="audio")
    save_model: bool = field(default=True, metadata={"help": "save the fine-tuned model and its card"})


TEXT_COLUMNS = {"asr": "asr_text", "manual": "text"}
# Trainer.evaluate adds these bookkeeping entries beside the task metrics of compute_metrics.
NOT_METRICS = {"loss", "runtime", "samples_per_second", "steps_per_second", "epoch"}


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((FinetuneArguments, TrainingArguments))
    args, training_args = parser.parse_args_into_dataclasses(args=argv)
    configure_logging(training_args.process_index)
    if args.model_type not in MODEL_CLASSES:
        raise ValueError(
            f"--model_type {args.model_type!r} has no fine-tuning yet; choose one of {sorted(MODEL_CLASSES)}"
        )
    if args.text_source not in TEXT_COLUMNS:
        raise ValueError(f"--text_source must be one of {sorted(TEXT_COLUMNS)}, got {args.text_source!r}")
    set_seed(training_args.seed)
    training_args.remove_unused_columns = False

    with training_args.main_process_first(desc="dataset preparation"):
        splits = load_splits(args.dataset_path, args.corpus_preset, args.corpus_dir, args.corpus_seed)
        splits = DatasetDict(
            {s: splits[s] for s in (args.train_split, args.validation_split, args.test_split)}
        )
        splits, label_names = task_dataset(splits, args.task)
        splits[args.train_split] = few_shot(splits[args.train_split], args.train_size, training_args.seed)
        # group_by_length groups evaluation batches too, so every split needs its lengths.
        splits = DatasetDict({name: add_length_column(split) for name, split in splits.items()})

    regression = label_names is None
    model = MODEL_CLASSES[args.model_type].from_pretrained(
        args.model_name_or_path,
        num_labels=1 if regression else len(label_names),
        problem_type="regression" if regression else "single_label_classification",
        id2label=None if regression else dict(enumerate(label_names)),
        label2id=None if regression else {n: i for i, n in enumerate(label_names)},
        freeze_audio_encoder=args.freeze_audio_encoder,
        freeze_text_encoder=args.freeze_text_encoder,
    )
    processor = AutoProcessor.from_pretrained(args.model_name_or_path)
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
        train_dataset=splits[args.train_split],
        eval_dataset=splits[args.validation_split],
        data_collator=collator,
        compute_metrics=make_compute_metrics(args.task),
        module_learning_rates=rates,
    )
    trainer.train()
    test = trainer.evaluate(splits[args.test_split], metric_key_prefix="test")
    results = {
        "task": args.task,
        "model_name_or_path": args.model_name_or_path,
        "text_source": args.text_source,
        "train_size": splits[args.train_split].num_rows,
        "seed": training_args.seed,
        "freeze_audio_encoder": args.freeze_audio_encoder,
        "freeze_text_encoder": args.freeze_text_encoder,
        **{k: v for k, v in test.items() if isinstance(v, (int, float))},
    }
    if trainer.is_world_process_zero():
        out = Path(training_args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "finetune_results.json").write_text(json.dumps(results, indent=2))
        if args.save_model:
            trainer.save_model(str(out))
            processor.save_pretrained(str(out))
            metrics = [
                Result(args.task, k[len("test_") :], float(v), split=args.test_split)
                for k, v in test.items()
                if k.startswith("test_") and k[len("test_") :] not in NOT_METRICS
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
                    "training rows": results["train_size"],
                    "seed": training_args.seed,
                },
            )
        logger.info("test results: %s", json.dumps(results))
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
