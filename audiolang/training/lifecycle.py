"""What every run script does around its work, as transformers' `examples/pytorch` do: one logging set-up, resuming
from the last checkpoint of `--output_dir`, refusing to write over anything a run did not create, and splitting the
rows of a long job into shards across processes.

A run owns its output folder: it holds a lock file naming its process while it runs (a second writer is refused; the
lock of a process that died is taken over), and records the arguments that make its checkpoints what they are
(`RUN_RECORD`), so that a re-run resumes only a checkpoint of the same run and `--overwrite_output_dir` removes the
previous run's checkpoints instead of leaving them to be resumed later."""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..data.asr import missing_shards

logger = logging.getLogger(__name__)

BAD_AUDIO_CHOICES = ("error", "skip")
# The lock file of the process that writes an output folder, and the record of the arguments its checkpoints were
# made with: both the run's own, never counted as someone else's content.
LOCK_FILE = ".audiolang-run.lock"
RUN_RECORD = "audiolang_run.json"
_RUN_FILES = (LOCK_FILE, RUN_RECORD)


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
    own = {p.name for p in _checkpoints(folder)} | set(_RUN_FILES)
    content = sorted(p.name for p in folder.iterdir() if p.name not in own)
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
    record: Mapping[str, Any] | None = None,
    subfolders: Sequence[str] = (),
) -> str | None:
    """Take `output_dir` for this run (`own_output_dir`) and return the checkpoint it resumes from, or None to start
    afresh; pass it to `Trainer.train`.

    `resume_from_checkpoint` when given; otherwise the last `checkpoint-N` of `output_dir`, so that re-running a
    killed command continues it (unless `overwrite_output_dir`, which removes the previous run's checkpoints and
    starts again). A checkpoint is resumed only if the arguments recorded with it (`record`, see `run_record`) are
    this run's: a checkpoint of another run (another task, seed, data, schedule, ...) is refused, naming the
    arguments that differ. An `output_dir` that holds something else than a run's files is refused unless
    `overwrite_output_dir`, and an `output_dir` that is the model being trained from (`model_name_or_path`) is
    always refused: saving would replace it. `subfolders` are folders of `output_dir` with checkpoints of their own
    (lrat's warm-up phase): `overwrite_output_dir` removes those too.
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
    own_output_dir(output_dir, overwrite_output_dir, subfolders)
    if resume_from_checkpoint is not None:
        if not Path(resume_from_checkpoint).is_dir():
            raise ValueError(f"--resume_from_checkpoint {resume_from_checkpoint!r} is not a folder.")
        check_run_record(resume_from_checkpoint, record)
        logger.info("resuming training from %s (--resume_from_checkpoint)", resume_from_checkpoint)
        return resume_from_checkpoint
    if overwrite_output_dir or not Path(output_dir).is_dir():
        write_run_record(output_dir, record)
        return None
    last = last_complete_checkpoint(output_dir)
    if last is None:
        check_output_folder(output_dir, "--output_dir", overwrite=False)
        write_run_record(output_dir, record)
        return None
    check_run_record(last, record)
    logger.info(
        "resuming training from %s, the last checkpoint in --output_dir (pass --overwrite_output_dir to start "
        "afresh instead)",
        last,
    )
    return last


def run_record(training_args: Any, **arguments: Any) -> dict[str, Any]:
    """What makes a run's checkpoints what they are, by command-line option: `arguments` (e.g. `task=...`,
    `model_name_or_path=...`, `dataset=data_fingerprint(data_args)`) and the seed and schedule of `training_args`
    (a `TrainingArguments`). A checkpoint is resumed only by a run with the same record."""
    schedule = (
        "seed",
        "max_steps",
        "num_train_epochs",
        "learning_rate",
        "lr_scheduler_type",
        "warmup_steps",
        "weight_decay",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
    )
    values = {**{name: getattr(training_args, name, None) for name in schedule}, **arguments}
    # JSON's view of each value (an enum as its value, a tuple as a list), so that a recorded value compares equal.
    return json.loads(json.dumps({f"--{k}": v for k, v in values.items()}, default=str))


def write_run_record(output_dir: str | os.PathLike[str], record: Mapping[str, Any] | None) -> None:
    """Record in `output_dir` the arguments of the run that starts there (`run_record`); its checkpoints are then
    resumed only by the same run. Only the main process writes it."""
    if record is None or not _is_main_process():
        return
    folder = Path(output_dir)
    _make_dirs(folder)
    tmp = folder / f".{RUN_RECORD}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(dict(record), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, folder / RUN_RECORD)


def check_run_record(checkpoint: str | os.PathLike[str], record: Mapping[str, Any] | None) -> None:
    """Refuse to resume `checkpoint` for a run whose `record` differs from the one its run recorded (in the
    checkpoint's folder, else in the output folder above it), naming every differing argument."""
    if record is None:
        return
    folder = Path(checkpoint)
    recorded = next(
        (_read_json(f / RUN_RECORD) for f in (folder, folder.parent) if (f / RUN_RECORD).is_file()), None
    )
    if recorded is None:
        logger.warning(
            "%s records no run arguments (%s): it cannot be checked to belong to this run",
            checkpoint,
            RUN_RECORD,
        )
        return
    if differing := describe_differences(recorded, record):
        raise ValueError(
            f"{str(checkpoint)!r} is a checkpoint of another run: it differs in {', '.join(differing)}. Pass "
            "--overwrite_output_dir to remove its checkpoints and start afresh, choose another --output_dir, or "
            "re-run with the arguments it was made with to resume it."
        )


def describe_differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """`name (<recorded> there, <current> now)` for every entry of `current` that `recorded` holds otherwise."""
    return [
        f"{name} ({_shown(recorded.get(name))} there, {_shown(value)} now)"
        for name, value in current.items()
        if recorded.get(name) != value
    ]


def _shown(value: Any) -> str:
    return "unset" if value is None else repr(value)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch (RANK), or a lone process: the one that owns the output folder."""
    return int(os.environ.get("RANK", 0)) == 0


# The folders this process locked, and those it created (removed at exit if nothing was written in them).
_LOCKED: set[Path] = set()
_CREATED: list[Path] = []


def own_output_dir(
    output_dir: str | os.PathLike[str], overwrite_output_dir: bool = False, subfolders: Sequence[str] = ()
) -> None:
    """Make this process the one writer of `output_dir` (the main process of a distributed run does it for all).

    A lock file (`LOCK_FILE`) names the process; another live process's lock is refused, one of a process that no
    longer runs (killed) is taken over with a log line. The lock goes at exit, and the folder too if the run wrote
    nothing in it. With `overwrite_output_dir`, the previous run's `checkpoint-N` folders (and those of
    `subfolders`) are removed, so that none of them is resumed later as if it were this run's.
    """
    if not _is_main_process():
        return
    folder = Path(output_dir).expanduser().resolve()
    if folder not in _LOCKED:
        _make_dirs(folder)
        _take_lock(folder / LOCK_FILE)
        _LOCKED.add(folder)
    if overwrite_output_dir:
        old = [c for f in (folder, *(folder / s for s in subfolders)) for c in _checkpoints(f)]
        if old:
            logger.info(
                "--overwrite_output_dir: removing the previous run's checkpoints %s", [str(c) for c in old]
            )
        for checkpoint in old:
            shutil.rmtree(checkpoint)
        (folder / RUN_RECORD).unlink(missing_ok=True)


def _make_dirs(folder: Path) -> None:
    missing = []
    parent = folder
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    folder.mkdir(parents=True, exist_ok=True)
    _CREATED.extend(reversed(missing))


def _take_lock(lock: Path) -> None:
    content = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_json(lock) or {}
            pid, host = holder.get("pid"), holder.get("host")
            if pid == os.getpid() and host == socket.gethostname():
                return
            if host != socket.gethostname() or _alive(pid):
                raise ValueError(
                    f"--output_dir {str(lock.parent)!r} is being written by another run (process {pid} on {host}, "
                    f"see {str(lock)!r}): wait for it to finish, or choose another --output_dir. If that run is "
                    "over (on another machine), delete the lock file."
                ) from None
            logger.warning("taking over %s: its process %s is no longer running", lock, pid)
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(content)
        return
    raise ValueError(f"could not take the lock {str(lock)!r}: another run keeps taking it")


def _alive(pid: Any) -> bool:
    """Whether process `pid` runs on this machine (a zombie, killed but not yet reaped, does not)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


@atexit.register
def _release_output_dirs() -> None:
    """At exit: drop this process's locks, and remove the folders it created if it wrote nothing else in them."""
    for folder in _LOCKED:
        lock = folder / LOCK_FILE
        if (_read_json(lock) or {}).get("pid") == os.getpid():
            lock.unlink(missing_ok=True)
        # A record with nothing else: the run failed before it wrote anything.
        if folder.is_dir() and {p.name for p in folder.iterdir()} == {RUN_RECORD}:
            (folder / RUN_RECORD).unlink()
    for folder in reversed(_CREATED):
        with contextlib.suppress(OSError):  # not empty (the run wrote something), or gone
            folder.rmdir()
