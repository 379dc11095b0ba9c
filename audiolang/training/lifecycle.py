"""What every run script does around its work, as transformers' `examples/pytorch` do: one logging set-up, resuming
from the last checkpoint of `--output_dir`, refusing to write over anything a run did not create, and splitting the
rows of a long job into shards across processes."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..data.asr import missing_shards

logger = logging.getLogger(__name__)

BAD_AUDIO_CHOICES = ("error", "skip")


@dataclass
class RunArguments:
    """The command-line options every training script adds to `TrainingArguments` (HfArgumentParser)."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "write over a non-empty --output_dir (and --save_initial_model) instead of refusing it, and "
            "start afresh instead of resuming from its last checkpoint"
        },
    )
    bad_audio: str = field(
        default="error",
        metadata={
            "help": "clips that fail to decode or are empty, silent, too short or at the wrong rate: 'error' lists "
            "them all and stops before training, 'skip' drops them and logs how many",
            "choices": BAD_AUDIO_CHOICES,
        },
    )
    preprocessing_num_workers: int | None = field(
        default=None,
        metadata={"help": "processes for the audio checks (default: one per 256 rows, up to the cores)"},
    )


@dataclass
class ShardArguments:
    """The command-line options of scripts that split their rows into contiguous shards, one per process (torchrun
    sets `RANK` and `WORLD_SIZE`) or per machine, then merge them (`run_transcribe.py`, `run_predict.py`)."""

    shard_index: int | None = field(default=None, metadata={"help": "This shard (default: $RANK, else 0)."})
    num_shards: int | None = field(
        default=None, metadata={"help": "Shards in all (default: $WORLD_SIZE, else 1)."}
    )
    merge_only: bool = field(default=False, metadata={"help": "Only merge the finished shards."})
    poll_interval_s: float = field(
        default=10.0, metadata={"help": "Under torchrun, how often shard 0 looks for the other shards."}
    )

    def __post_init__(self) -> None:
        if self.shard_index is None:
            self.shard_index = int(os.environ.get("RANK", 0))
        if self.num_shards is None:
            self.num_shards = int(os.environ.get("WORLD_SIZE", 1))


def ready_to_merge(work_dir: str | os.PathLike[str], shards: ShardArguments) -> bool:
    """Whether this process, its own shard done, merges the shards of `work_dir` (`shard_dir` folders): only shard 0
    does, once every shard is finished. Under torchrun it waits for them (torchrun stops every rank when one fails, so
    the wait cannot outlive a crashed shard); otherwise it merges only if they are already finished."""
    if shards.shard_index != 0:
        return False
    if "WORLD_SIZE" in os.environ:
        while missing := missing_shards(work_dir, shards.num_shards):
            logger.info("waiting for shards %s", missing)
            time.sleep(shards.poll_interval_s)
        return True
    if missing := missing_shards(work_dir, shards.num_shards):
        logger.info(
            "shards %s are not finished: not merging yet. Re-run shard 0, or run with --merge_only, once they are.",
            missing,
        )
        return False
    return True


def configure_logging(process_index: int = 0) -> None:
    """The run scripts' logging, to stderr: INFO on the main process, warnings on the others; transformers and
    datasets at WARNING (their progress bars stay)."""
    import datasets
    import transformers

    logging.basicConfig(
        level=logging.INFO if process_index == 0 else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    transformers.utils.logging.set_verbosity_warning()
    datasets.utils.logging.set_verbosity_warning()


def _same_folder(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _checkpoints(folder: Path) -> list[Path]:
    """The `checkpoint-<step>` folders of `folder`, last step first."""
    found = [
        p for p in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.is_dir() and p.name.split("-")[-1].isdigit()
    ]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True)


def last_complete_checkpoint(folder: str | os.PathLike[str]) -> str | None:
    """The last checkpoint of `folder` that `Trainer` finished writing, or None.

    `Trainer` writes a checkpoint's files in place and its `trainer_state.json` last: a run killed while saving
    leaves a checkpoint without it (or with half of it), which cannot be resumed from; such checkpoints are skipped
    (the run that resumes writes them again when it gets there).
    """
    for checkpoint in _checkpoints(Path(folder)):
        try:
            json.loads((checkpoint / TRAINER_STATE_NAME).read_text())
            return str(checkpoint)
        except (OSError, json.JSONDecodeError):
            logger.warning(
                "%s is incomplete (no complete %s): not resuming from it", checkpoint, TRAINER_STATE_NAME
            )
    return None


def check_output_folder(path: str | os.PathLike[str], option: str, overwrite: bool) -> None:
    """Refuse a non-empty folder unless `overwrite` (the user's `--overwrite_output_dir`): a run writes over
    nothing it did not create. Checkpoint folders count as a run's own. `option` names the command-line option in
    the message."""
    folder = Path(path)
    if overwrite or not folder.is_dir():
        return
    checkpoints = {p.name for p in _checkpoints(folder)}
    content = sorted(p.name for p in folder.iterdir() if p.name not in checkpoints)
    if content:
        shown = ", ".join(content[:5]) + (", ..." if len(content) > 5 else "")
        raise ValueError(
            f"{option} {str(folder)!r} is not empty (it holds {shown}) and has no checkpoint to resume from: "
            f"choose another {option}, or pass --overwrite_output_dir to write over it."
        )


def resume_checkpoint(
    output_dir: str | os.PathLike[str],
    overwrite_output_dir: bool = False,
    resume_from_checkpoint: str | None = None,
    model_name_or_path: str | None = None,
) -> str | None:
    """The checkpoint a training run resumes from, or None to start afresh; pass it to `Trainer.train`.

    `resume_from_checkpoint` when given; otherwise the last `checkpoint-N` of `output_dir`, so that re-running a
    killed command continues it (unless `overwrite_output_dir`, which starts again). An `output_dir` that holds
    something else than checkpoints is refused unless `overwrite_output_dir`, and an `output_dir` that is the
    model being trained from (`model_name_or_path`) is always refused: saving would replace it.
    """
    if (
        model_name_or_path is not None
        and Path(model_name_or_path).is_dir()
        and _same_folder(output_dir, model_name_or_path)
    ):
        raise ValueError(
            f"--output_dir {str(output_dir)!r} is the model being trained (--model_name_or_path): saving would "
            "replace it. Choose another --output_dir."
        )
    if resume_from_checkpoint is not None:
        if not Path(resume_from_checkpoint).is_dir():
            raise ValueError(f"--resume_from_checkpoint {resume_from_checkpoint!r} is not a folder.")
        logger.info("resuming training from %s (--resume_from_checkpoint)", resume_from_checkpoint)
        return resume_from_checkpoint
    if overwrite_output_dir or not Path(output_dir).is_dir():
        return None
    last = last_complete_checkpoint(output_dir)
    if last is None:
        check_output_folder(output_dir, "--output_dir", overwrite=False)
        return None
    logger.info(
        "resuming training from %s, the last checkpoint in --output_dir (pass --overwrite_output_dir to start "
        "afresh instead)",
        last,
    )
    return last
