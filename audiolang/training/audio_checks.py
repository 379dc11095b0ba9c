"""Bad clips found before training, not by a crash mid-run: every clip of the prepared splits is decoded once and
checked, in parallel and cached with the dataset (`datasets.map`), and each bad row is named by split, row index and
file.

A clip is bad when it cannot be decoded, has no samples, has NaN/inf samples, is silent, is shorter than the model's
audio encoder can take, or is at the wrong sampling rate: decoded at another rate than the model's, or recorded below
it (an 8 kHz clip that the `Audio(sampling_rate=16000)` feature upsamples lacks everything above 4 kHz, which the
rest of the data has).
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from datasets import Audio, Dataset
from datasets.fingerprint import Hasher

from ..audio_utils import decode_error_message, truncation_problem
from ..data.asr import audio_to_array
from ..dual_encoder import min_audio_input_length
from .data import ROW_INDEX_COLUMN
from .lifecycle import BAD_AUDIO_CHOICES

logger = logging.getLogger(__name__)

# The quietest non-zero 16-bit PCM sample: a clip whose peak stays below it is digital silence in any recording.
SILENCE_PEAK = 2.0**-15
# Rows per worker below which a process pool costs more than it saves.
_ROWS_PER_WORKER = 256


@dataclass(frozen=True)
class BadAudio:
    """One bad clip: where it is and what is wrong with it."""

    split: str
    row: int
    file: str | None
    problem: str

    def __str__(self) -> str:
        return f"split {self.split!r} row {self.row} ({self.file or 'audio stored in the dataset'}): {self.problem}"


def audio_problem(value: Any, audio_feature: Audio | None, sampling_rate: int, min_samples: int) -> str:
    """What is wrong with one stored audio value, or `""` if nothing is. `value` is the undecoded `{"bytes",
    "path"}` of an `Audio` column (decoded here with `audio_feature`, exactly as training will) or an `{"array",
    "sampling_rate"}` dict."""
    return _inspect(value, audio_feature, sampling_rate, min_samples)[0]


def _inspect(
    value: Any, audio_feature: Audio | None, sampling_rate: int, min_samples: int
) -> tuple[str, str]:
    """`(problem, truncation)` of one stored audio value: what makes it unusable (`audio_problem`), and whether its
    file is cut short (`truncation_problem`; usable, but only the part that is there is heard)."""
    native_rate = None
    source = None
    if audio_feature is not None and isinstance(value, Mapping):
        source = value.get("bytes") or value.get("path")
        if source is not None and not isinstance(source, bytes) and not os.path.isfile(source):
            return f"file not found: {source}", ""
        if (
            source is not None
            and (len(source) if isinstance(source, bytes) else os.path.getsize(source)) == 0
        ):
            return "empty file (0 bytes)", ""
    try:
        if audio_feature is not None:
            value = audio_feature.decode_example(value)
            native_rate = value.metadata.sample_rate
    except Exception as error:  # noqa: BLE001 (decoders raise RuntimeError, OSError, ValueError, ...)
        return f"cannot be decoded ({decode_error_message(error)})", ""
    try:
        array, rate = audio_to_array(value)
    except Exception:  # noqa: BLE001
        # The file opened, but the decoder found no frames: an empty recording, or a header that lies.
        return "empty: no audio frames could be decoded", ""
    truncation = truncation_problem(source, array.size / rate) if source is not None and rate else ""
    if native_rate is not None and native_rate < sampling_rate:
        return (
            f"recorded at {native_rate} Hz, below the model's {sampling_rate} Hz: upsampling cannot restore the "
            f"band above {native_rate // 2} Hz"
        ), truncation
    if rate != sampling_rate:
        return (
            f"sampled at {rate} Hz, expected {sampling_rate}: cast the column with "
            f"datasets.Audio(sampling_rate={sampling_rate})"
        ), truncation
    if array.size == 0:
        return "empty (0 samples)", truncation
    if not np.isfinite(array).all():
        return f"{int((~np.isfinite(array)).sum())} NaN/inf samples", truncation
    peak = float(np.abs(array).max())
    if peak < SILENCE_PEAK:
        return f"silent (peak amplitude {peak:.1e})", truncation
    if array.size < min_samples:
        return f"too short: {array.size} samples, the audio encoder needs at least {min_samples}", truncation
    return "", truncation


def _problems(
    values: list[Any], audio_feature: Audio | None, sampling_rate: int, min_samples: int
) -> dict[str, list[str]]:
    found = [_inspect(v, audio_feature, sampling_rate, min_samples) for v in values]
    return {"audio_problem": [f[0] for f in found], "audio_truncation": [f[1] for f in found]}


def find_bad_audio(
    dataset: Dataset,
    split: str,
    audio_column: str = "audio",
    sampling_rate: int = 16_000,
    min_samples: int = 1,
    num_proc: int | None = None,
) -> list[BadAudio]:
    """Every bad clip of `dataset` (one split), in row order.

    Args:
        split: The split's name, for the report.
        sampling_rate: The rate the model takes.
        min_samples: The shortest clip the model's audio encoder can take (see `min_audio_samples`).
        num_proc: Worker processes; by default one per 256 rows, at most one per core.
    """
    if audio_column not in dataset.column_names:
        raise ValueError(f"audio_column {audio_column!r} is not in split {split!r}: {dataset.column_names}")
    feature = dataset.features[audio_column]
    audio_feature = feature if isinstance(feature, Audio) and feature.decode else None
    undecoded = dataset.select_columns([audio_column])
    if audio_feature is not None:
        undecoded = undecoded.cast_column(audio_column, Audio(decode=False))
    if num_proc is None:
        num_proc = min(os.cpu_count() or 1, dataset.num_rows // _ROWS_PER_WORKER)
    # A map over the dataset: cached beside its files, keyed by the checks' arguments and code, so that a re-run (a
    # resumed training, the next fine-tuning on the same data) does not decode everything again. `datasets` hashes
    # `_problems` but not the functions it calls, so the key holds the source of the modules that do the checking:
    # a cache written by other checks (another audiolang version) is never read back.
    fingerprint = Hasher.hash(
        [
            undecoded._fingerprint,
            audio_column,
            audio_feature,
            sampling_rate,
            min_samples,
            *(inspect.getsource(sys.modules[name]) for name in (__name__, truncation_problem.__module__)),
        ]
    )
    checked = undecoded.map(
        _problems,
        input_columns=[audio_column],
        fn_kwargs={
            "audio_feature": audio_feature,
            "sampling_rate": sampling_rate,
            "min_samples": min_samples,
        },
        batched=True,
        remove_columns=[audio_column],
        num_proc=num_proc if num_proc > 1 else None,
        desc=f"checking the audio of {split!r}",
        new_fingerprint=fingerprint,
    )
    problems, truncations = checked["audio_problem"], checked["audio_truncation"]
    # Rows are named as the user's data numbers them (`add_row_index`), when the split is a selection of it.
    rows = dataset[ROW_INDEX_COLUMN] if ROW_INDEX_COLUMN in dataset.column_names else range(dataset.num_rows)

    def where(position: int) -> BadAudio:
        value = undecoded[position][audio_column]
        file = value.get("path") if isinstance(value, Mapping) else None
        return BadAudio(split, rows[position], file, problems[position] or truncations[position])

    cut = [where(i) for i, truncation in enumerate(truncations) if truncation and not problems[i]]
    if cut:
        logger.warning(
            "%d audio clip(s) of split %r are cut short; only the part that is there is used:\n%s",
            len(cut),
            split,
            "\n".join(f"  {clip}" for clip in cut[:20]) + ("\n  ..." if len(cut) > 20 else ""),
        )
    return [where(i) for i, problem in enumerate(problems) if problem]


def check_audio(
    splits: Mapping[str, Dataset],
    audio_column: str = "audio",
    sampling_rate: int = 16_000,
    min_samples: int = 1,
    bad_audio: Literal["error", "skip"] = "error",
    num_proc: int | None = None,
) -> dict[str, Dataset]:
    """Check every clip of every split (`find_bad_audio`) before anything trains on them.

    With `bad_audio="error"`, any bad clip raises one `ValueError` that lists every bad row of every split; with
    `"skip"`, the bad rows are dropped, their count logged, and the splits returned without them.
    """
    if bad_audio not in BAD_AUDIO_CHOICES:
        raise ValueError(f"`bad_audio` must be one of {BAD_AUDIO_CHOICES}, got {bad_audio!r}")
    bad = {
        name: find_bad_audio(split, name, audio_column, sampling_rate, min_samples, num_proc)
        for name, split in splits.items()
    }
    found = [clip for clips in bad.values() for clip in clips]
    if found and bad_audio == "error":
        raise ValueError(
            f"{len(found)} bad audio clip(s) in the data:\n"
            + "\n".join(f"  {clip}" for clip in found)
            + "\nRepair or remove them, or pass --bad_audio skip to go on without them."
        )
    checked = {}
    for name, split in splits.items():
        rows = {clip.row for clip in bad[name]}
        if rows:
            logger.warning("skipping %d bad audio clip(s) of split %r (--bad_audio skip)", len(rows), name)
            ids = split[ROW_INDEX_COLUMN] if ROW_INDEX_COLUMN in split.column_names else range(split.num_rows)
            split = split.select([i for i, row in enumerate(ids) if row not in rows])
        checked[name] = split
    return checked


def min_audio_samples(feature_extractor: Any, audio_model: Any = None) -> int:
    """The fewest samples a clip needs: what the feature extractor needs (its `min_samples`, e.g. CTAL's deltas
    need several frames), and one frame of a raw-waveform (wav2vec2-style) audio encoder's convolution stem."""
    needed = int(getattr(feature_extractor, "min_samples", 1))
    # Only raw-waveform encoders count in samples (a Whisper encoder's lengths are mel frames).
    raw_waveform = getattr(audio_model, "main_input_name", None) == "input_values"
    if raw_waveform and hasattr(audio_model, "_get_feat_extract_output_lengths"):
        needed = max(needed, min_audio_input_length(audio_model))
    return needed
