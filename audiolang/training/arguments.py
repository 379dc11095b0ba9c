"""The data arguments every run script shares: where the data comes from, which columns hold the audio, the
transcripts and the labels, and which splits train, validate and test. The names are those of transformers'
`examples/pytorch` scripts (`run_audio_classification.py`, `run_speech_recognition_*.py`), so that a command written
for them reads the same data here; the older audiolang names stay as aliases."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from transformers import TrainingArguments
from transformers.utils import is_torch_bf16_gpu_available, is_torch_xla_available

# What `--task_type` accepts; `None` infers it from the label column's feature (`infer_task_type`).
TASK_TYPES = ("classification", "regression", "speaker_verification")


@dataclass
class DatasetArguments:
    """Any `datasets` source: a Hub id or builder (`--dataset_name audiofolder --data_dir DIR`, `--dataset_name csv
    --data_files train=a.csv test=b.csv`), a `save_to_disk` folder (`--dataset_path`), or, with none of them, the
    embedded in-car corpus (built, or loaded from its cache)."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "datasets.load_dataset's path: a Hub dataset id (a local folder of that name works offline), "
            "a builder (audiofolder, csv, json, parquet, arrow) or a local folder of data files"
        },
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "the configuration (name) of --dataset_name"}
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "data_dir of load_dataset, e.g. the folder of an audiofolder dataset"}
    )
    data_files: list[str] | None = field(
        default=None,
        metadata={
            "help": "data files of load_dataset: 'FILE' (one 'train' split) or 'SPLIT=FILE' items, e.g. "
            "'train=train.csv test=test.csv'; without --dataset_name the builder follows the extension",
            "nargs": "+",
        },
    )
    dataset_path: str | None = field(
        default=None, metadata={"help": "a datasets save_to_disk folder (an audiolang corpus folder too)"}
    )
    corpus_preset: str = field(
        default="default", metadata={"help": "without a dataset: the embedded corpus preset"}
    )
    corpus_dir: str | None = field(
        default=None, metadata={"help": "without a dataset: where the embedded corpus is (built if missing)"}
    )
    corpus_seed: int = field(default=0, metadata={"help": "without a dataset: the embedded corpus seed"})
    audio_column_name: str = field(
        default="audio",
        metadata={
            "help": "the audio column: a datasets Audio feature, or file paths (relative paths are read from "
            "the folder of the data files); decoded at the model's rate, multi-channel audio mixed to mono",
            "aliases": ["--audio_column"],
        },
    )
    train_split_name: str = field(
        default="train", metadata={"help": "the training split", "aliases": ["--train_split"]}
    )
    validation_split_name: str = field(
        default="validation",
        metadata={
            "help": "the validation split (made from the training split when the dataset has none)",
            "aliases": ["--validation_split"],
        },
    )
    test_split_name: str = field(
        default="test",
        metadata={
            "help": "the test split (made from the training split when the dataset has none)",
            "aliases": ["--test_split"],
        },
    )
    validation_split_percentage: float = field(
        default=10.0,
        metadata={
            "help": "a dataset without a validation split: this percentage of its training split validates "
            "(a seeded split, stratified by label for classification)"
        },
    )
    test_split_percentage: float = field(
        default=10.0,
        metadata={
            "help": "a dataset without a test split: this percentage of its training split tests (seeded, "
            "stratified by label for classification)"
        },
    )


# The default fine-tuning recipe, chosen on the validation split (benchmarks/results/finetune_recipe.md): evaluate
# every epoch, keep the best checkpoint, stop after EARLY_STOPPING_PATIENCE epochs without a better one. The new
# layers (classifier, projections) learn at `learning_rate`; a pretrained text tower at TEXT_ENCODER_LEARNING_RATE:
# 5e-5 scored within the seed noise of the best (2e-5: 0.9197 vs 0.9171 mean validation accuracy over intent and
# directedness, std ~0.007) and reached its best checkpoint in half the epochs (8.3 vs 14.6 summed over the tasks).
EARLY_STOPPING_PATIENCE = 3
TEXT_ENCODER_LEARNING_RATE = 5e-5


# `TrainingArguments` fields that count something and must be at least 1, with what they count (for the message).
_AT_LEAST_ONE = {
    "per_device_train_batch_size": "rows each process trains on per step",
    "per_device_eval_batch_size": "rows each process evaluates per step",
    "gradient_accumulation_steps": "batches accumulated per optimizer step",
}


@dataclass
class CheckedTrainingArguments(TrainingArguments):
    """`TrainingArguments` whose counts are checked when parsed, before a run creates or locks any folder: a batch
    size of 0 stops at once with the option named, not deep in the data loader."""

    def __post_init__(self) -> None:
        for name, meaning in _AT_LEAST_ONE.items():
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name} must be an integer >= 1 (the {meaning}), got {value!r}.")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ValueError(
                f"--num_train_epochs is {self.num_train_epochs} and --max_steps {self.max_steps}: nothing would be "
                "trained. Give --num_train_epochs > 0 or --max_steps > 0."
            )
        if self.learning_rate < 0:
            raise ValueError(f"--learning_rate must be >= 0, got {self.learning_rate}.")
        if self.dataloader_num_workers < 0:
            raise ValueError(
                f"--dataloader_num_workers must be >= 0 (0 loads in the main process), got {self.dataloader_num_workers}."
            )
        super().__post_init__()


@dataclass
class AudioTextTrainingArguments(CheckedTrainingArguments):
    """`TrainingArguments` with gradient caching for contrastive losses (`--contrastive_micro_batch_size`, read by
    `AudioTextTrainer`) and clear advice on mixed precision and launchers on machines without a GPU
    (docs/training-at-scale.md)."""

    contrastive_micro_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "DSCLAP and Turbo: compute the contrastive loss over the whole per-device batch but hold the "
            "activations of this many rows at a time (gradient caching, Gao et al. 2021): the same loss and "
            "gradients as the full batch, in less memory, for about one more forward pass"
        },
    )

    def __post_init__(self) -> None:
        if self.contrastive_micro_batch_size is not None and self.contrastive_micro_batch_size < 1:
            raise ValueError(
                f"--contrastive_micro_batch_size must be >= 1, got {self.contrastive_micro_batch_size}: give a number "
                "of rows (e.g. 32), or leave it unset to back-propagate the whole batch at once."
            )
        self._check_bf16_device()
        _refuse_single_cpu_process_launch()
        super().__post_init__()

    def _check_bf16_device(self) -> None:
        """transformers refuses `--bf16` without a bf16 GPU unless `--use_cpu` says to use the CPU; `accelerate launch
        --cpu` has said so already (transformers ignores that here), and otherwise the error names the flag."""
        if not (self.bf16 or self.bf16_full_eval) or self.use_cpu:
            return
        if is_torch_bf16_gpu_available() or is_torch_xla_available():
            return
        if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
            self.use_cpu = True
            return
        raise ValueError(
            "--bf16 true needs a GPU that computes in bf16 (NVIDIA Ampere or newer), and none is visible. To train "
            "with bf16 autocast on the CPU, add --use_cpu true (weights and optimizer stay fp32; it is slower than "
            "fp32 on CPUs without bf16 instructions); or drop --bf16."
        )


def _refuse_single_cpu_process_launch() -> None:
    """`accelerate launch --cpu --num_processes N` (accelerate 1.x, one machine, no mpirun) starts one process, not N:
    it exports MASTER_PORT for the N processes but no WORLD_SIZE. That process then trains alone, or fails inside
    accelerate with `--ddp_backend gloo`."""
    env = os.environ
    if (
        env.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")
        and "MASTER_PORT" in env
        and "WORLD_SIZE" not in env
    ):
        raise ValueError(
            "accelerate launch --cpu --num_processes N started one process, not N (accelerate runs several CPU "
            "processes on one machine only through mpirun). On one machine, use `accelerate launch --multi_gpu "
            "--num_processes N ... --use_cpu true` (gloo) or `torchrun --nproc_per_node N ...`; for one process, "
            "leave --num_processes out (docs/training-at-scale.md)."
        )


@dataclass
class FinetuneTrainingArguments(AudioTextTrainingArguments):
    """`TrainingArguments` with the fine-tuning recipe's defaults (`run_finetune.py`); every one can be overridden
    on the command line. `--save_strategy no` or `--eval_strategy no` leave no checkpoint to choose from, so they
    turn `load_best_model_at_end` (and early stopping) off."""

    num_train_epochs: float = field(
        default=15.0, metadata={"help": "at most this many epochs (early stopping)"}
    )
    learning_rate: float = field(
        default=1e-3, metadata={"help": "the new layers' rate (the towers take their own rates)"}
    )
    warmup_steps: float = field(default=0.1, metadata={"help": "warm-up: steps, or a fraction of them (< 1)"})
    eval_strategy: str = field(
        default="epoch", metadata={"help": "evaluate on the validation split: no, steps, epoch"}
    )
    save_strategy: str = field(default="epoch", metadata={"help": "save checkpoints: no, steps, epoch, best"})
    save_total_limit: int | None = field(
        default=2, metadata={"help": "checkpoints kept (the best one is always kept)"}
    )
    load_best_model_at_end: bool = field(
        default=True,
        metadata={"help": "end with the checkpoint of the best validation --metric_for_best_model"},
    )

    def __post_init__(self) -> None:
        if self.load_best_model_at_end and "no" in (str(self.save_strategy), str(self.eval_strategy)):
            self.load_best_model_at_end = False
        super().__post_init__()
