#!/usr/bin/env python
"""Evaluate a saved audiolang classifier on one split of a dataset, with the task's metrics.

Any family's sequence classifier (DSCLAP, Turbo, CTAL, lrat) and any task of ``run_finetune.py`` but ``speaker``:
``directed`` (accuracy, FRR, FAR, F1, EER), ``intent`` (accuracy, macro-F1), ``emotion`` (WA, UA), ``valence``
(regression: MAE, Pearson, Acc2, F1). The model reads each clip with its ``--text_source`` transcript, as in
fine-tuning; the metrics are those of ``audiolang.metrics`` over ``Trainer.predict``, written to
``<output_dir>/<split>_results.json`` (and ``all_results.json``), as transformers' examples write theirs, with the
plots of ``audiolang.plots`` next to them (``<split>_confusion_matrix.png``; ``<split>_det_roc.png`` for ``directed``;
``<split>_predicted_vs_true.png`` for ``valence``).

    python run_scripts/run_evaluate.py --model_name_or_path out/dsclap-intent --task intent \
        --dataset_path out/corpus --split test --output_dir out/dsclap-intent-eval
    # several processes: torchrun --nproc_per_node 2 run_scripts/run_evaluate.py ...

A non-empty ``--output_dir`` is refused unless ``--overwrite_output_dir``; every clip is checked first
(``--bad_audio error|skip``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from transformers import AutoModelForSequenceClassification, AutoProcessor, HfArgumentParser

from audiolang.metrics import make_compute_metrics
from audiolang.plots import write_evaluation_plots
from audiolang.training import (
    ROW_INDEX_COLUMN,
    TASKS,
    TEXT_COLUMNS,
    AudioTextTrainer,
    CheckedTrainingArguments,
    DataCollatorForAudioText,
    DatasetArguments,
    RunArguments,
    add_length_column,
    add_row_index,
    check_audio,
    check_model_labels,
    check_output_folder,
    configure_logging,
    ensure_text_column,
    evaluate_test_split,
    load_labelled_splits,
    min_audio_samples,
    resolve_task,
)

logger = logging.getLogger("run_evaluate")
# Speaker verification scores unseen speakers by embedding similarity, not a classifier: run_finetune.py does it.
EVALUATION_TASKS = tuple(task for task in TASKS if task != "speaker")


@dataclass
class EvaluateArguments:
    model_name_or_path: str = field(metadata={"help": "a fine-tuned classifier folder (or hub id)"})
    task: str | None = field(
        default=None,
        metadata={
            "help": f"a shorthand for one of the corpus' label columns, one of {EVALUATION_TASKS} (default without "
            "--label_column_name: directed)"
        },
    )
    label_column_name: str | None = field(
        default=None,
        metadata={"help": "your dataset's label column (instead of --task), in the model's label names"},
    )
    task_type: str | None = field(
        default=None, metadata={"help": "classification or regression (default: inferred from the labels)"}
    )
    split: str = field(
        default="test",
        metadata={
            "help": "the split to evaluate (a dataset with only a training split: the test or validation split "
            "run_finetune.py made from it, with the same --seed and percentages)"
        },
    )
    text_column_name: str | None = field(
        default=None,
        metadata={
            "help": "the transcripts the model reads (default: --text_source's column of the corpus); a dataset "
            "without this column is transcribed with --asr",
            "aliases": ["--text_column"],
        },
    )
    text_source: str = field(default="asr", metadata={"help": "asr (the asr_text column) or manual (text)"})
    asr: str = field(
        default="whisper-tiny.en",
        metadata={
            "help": "the recogniser (an audiolang.load_asr spec) that transcribes a dataset without text"
        },
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = HfArgumentParser((EvaluateArguments, DatasetArguments, RunArguments, CheckedTrainingArguments))
    args, data_args, run_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    configure_logging(training_args.process_index)
    if args.task is not None and args.task not in EVALUATION_TASKS:
        raise ValueError(f"--task must be one of {EVALUATION_TASKS}, got {args.task!r}")
    if args.text_source not in TEXT_COLUMNS:
        raise ValueError(f"--text_source must be one of {sorted(TEXT_COLUMNS)}, got {args.text_source!r}")
    spec = resolve_task(args.task, args.label_column_name, args.task_type)
    check_output_folder(training_args.output_dir, "--output_dir", run_args.overwrite_output_dir)
    training_args.remove_unused_columns = False
    model = AutoModelForSequenceClassification.from_pretrained(args.model_name_or_path)
    processor = AutoProcessor.from_pretrained(args.model_name_or_path)
    text_column = args.text_column_name or TEXT_COLUMNS[args.text_source]
    audio_column = data_args.audio_column_name

    with training_args.main_process_first(desc="dataset preparation"):
        # The corpus' tasks check the model's classes against the column's; any other labels are read in the
        # model's own label names (a label it does not know is an error naming it).
        model_labels = (
            None
            if args.task is not None or model.config.num_labels == 1
            else [model.config.id2label[i] for i in range(model.config.num_labels)]
        )
        splits, spec, label_names = load_labelled_splits(
            data_args,
            spec,
            (args.split,),
            processor.feature_extractor.sampling_rate,
            training_args.seed,
            make_missing=(data_args.validation_split_name, data_args.test_split_name),
            label_names=model_labels,
        )
        check_model_labels(model.config, label_names, spec.name)
        splits = ensure_text_column(
            splits, text_column, audio_column, args.asr, run_args.preprocessing_num_workers
        )
        dataset = check_audio(
            {args.split: add_row_index(splits[args.split])},
            audio_column=audio_column,
            sampling_rate=processor.feature_extractor.sampling_rate,
            min_samples=min_audio_samples(processor.feature_extractor, getattr(model, "audio_model", None)),
            bad_audio=run_args.bad_audio,
            num_proc=run_args.preprocessing_num_workers,
        )[args.split]
        # group_by_length groups evaluation batches too.
        dataset = add_length_column(dataset, audio_column)

    collator = DataCollatorForAudioText(
        processor,
        audio_column=audio_column,
        text_column=text_column,
        label_column="labels",
        index_column=ROW_INDEX_COLUMN,
    )
    trainer = AudioTextTrainer(
        model=model,
        args=training_args,
        data_collator=collator,
        processing_class=processor,
        compute_metrics=make_compute_metrics(spec.name),
    )
    metrics, prediction = evaluate_test_split(
        trainer, dataset, training_args.output_dir, metric_key_prefix=args.split, return_outputs=True
    )
    metrics[f"{args.split}_samples"] = dataset.num_rows
    trainer.log_metrics(args.split, metrics)
    trainer.save_metrics(args.split, metrics)
    if trainer.is_world_process_zero():
        write_evaluation_plots(
            spec.name,
            prediction.label_ids,
            prediction.predictions,
            label_names,
            training_args.output_dir,
            prefix=args.split,
        )
    return metrics


if __name__ == "__main__":
    main()
