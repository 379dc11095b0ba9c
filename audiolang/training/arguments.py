"""The data arguments every run script shares: where the data comes from, which columns hold the audio, the
transcripts and the labels, and which splits train, validate and test. The names are those of transformers'
`examples/pytorch` scripts (`run_audio_classification.py`, `run_speech_recognition_*.py`), so that a command written
for them reads the same data here; the older audiolang names stay as aliases."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

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
# layers (classifier, projections) learn at `learning_rate`; a pretrained text tower at TEXT_ENCODER_LEARNING_RATE.
EARLY_STOPPING_PATIENCE = 3
TEXT_ENCODER_LEARNING_RATE = 2e-5


@dataclass
class FinetuneTrainingArguments(TrainingArguments):
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
