"""Raw-audio validation shared by every audiolang feature extractor and processor.

Each check raises a `ValueError` that names the offending field (and the clip's index in the batch) and says how
to fix the input, so that a bad clip fails at preprocessing time rather than as a shape error or a NaN loss deep
inside a training run.

This module is a flat sibling of the modeling/processing modules: it imports nothing from `audiolang` so that it can
be copied next to a checkpoint and loaded with `trust_remote_code=True`.
"""

import os
import re
from typing import Any

import numpy as np

__all__ = [
    "check_batch_sizes",
    "decode_error_message",
    "truncation_problem",
    "validate_raw_audio",
    "validate_sampling_rate",
]

# Larger samples are not audio (float audio lies in [-1, 1], integer PCM within 2**31), and they would overflow the
# float32 arithmetic of normalisation and power spectra into inf/NaN features.
MAX_AMPLITUDE = 2.0**31


def validate_sampling_rate(sampling_rate: int | None, expected_sampling_rate: int) -> None:
    """Raise a `ValueError` unless `sampling_rate` is given and equals `expected_sampling_rate`.

    A missing rate is an error rather than a warning: a clip recorded at 8 kHz or 44.1 kHz passes every shape check
    and silently produces garbage features.
    """
    resample_hint = (
        f"resample the audio to {expected_sampling_rate} Hz first, e.g. "
        f"`librosa.resample(y, orig_sr=sr, target_sr={expected_sampling_rate})` or "
        f"`dataset.cast_column('audio', datasets.Audio(sampling_rate={expected_sampling_rate}))`"
    )
    if sampling_rate is None:
        raise ValueError(
            f"`sampling_rate` is required: pass `sampling_rate={expected_sampling_rate}` with the audio (if the audio "
            f"is at another rate, {resample_hint})."
        )
    # A string ("16000") or a fraction of a hertz is a caller's bug, not another rate to resample from.
    whole = isinstance(sampling_rate, (int, float, np.integer, np.floating)) and not isinstance(
        sampling_rate, bool
    )
    if not (whole and np.isfinite(sampling_rate) and sampling_rate == int(sampling_rate)):
        raise ValueError(
            f"`sampling_rate` must be an integer number of Hz, got {sampling_rate!r} "
            f"({type(sampling_rate).__name__}): pass e.g. `sampling_rate={expected_sampling_rate}`."
        )
    if sampling_rate != expected_sampling_rate:
        raise ValueError(
            f"`sampling_rate` is {sampling_rate} Hz but this feature extractor expects {expected_sampling_rate} Hz: "
            f"{resample_hint}."
        )


def _is_clip_like(item: Any) -> bool:
    return isinstance(item, (np.ndarray, list, tuple)) or hasattr(item, "__array__")


def _as_clip_list(raw_audio: Any, field: str) -> list[np.ndarray]:
    """Turn the accepted input layouts into a list of per-clip arrays (not yet checked for shape).

    Accepted: one clip (1-D array or list of floats), a list/tuple of clips, or a 2-D array of shape
    `(batch, samples)`. A 2-D array whose last axis has 1 or 2 entries is the `(samples, channels)` layout that
    `soundfile.read` returns for multi-channel files, not a batch, and is reported as such.
    """
    if raw_audio is None:
        raise ValueError(f"`{field}` is None: pass a 1-D waveform or a list of 1-D waveforms.")
    if isinstance(raw_audio, (list, tuple)):
        if len(raw_audio) == 0:
            raise ValueError(f"`{field}` is an empty list: pass at least one waveform.")
        if all(_is_clip_like(item) for item in raw_audio):
            return [np.asarray(item) for item in raw_audio]
        return [np.asarray(raw_audio)]
    array = np.asarray(raw_audio)
    if array.ndim == 2 and array.shape[-1] <= 2 < array.shape[0]:
        raise ValueError(
            f"`{field}` has shape {array.shape}, which looks like one multi-channel clip laid out as "
            f"(samples, channels), but mono audio is expected: downmix it first, e.g. `y.mean(axis=1)`. "
            f"To pass a batch, use a list of 1-D arrays."
        )
    if array.ndim == 2 and array.shape[0] == 0:
        raise ValueError(
            f"`{field}` has shape {array.shape}: a batch without clips. Pass at least one waveform."
        )
    if array.ndim == 2:
        return list(array)
    return [array]


def validate_raw_audio(
    raw_audio: Any,
    sampling_rate: int | None,
    *,
    expected_sampling_rate: int,
    max_samples: int | None = None,
    min_samples: int = 1,
    field: str = "audio",
) -> list[np.ndarray]:
    """Validate raw mono waveforms and return them as a list of 1-D float32 arrays.

    Args:
        raw_audio: One clip (1-D array or list of floats), a list/tuple of clips, or a `(batch, samples)` array.
            Torch tensors are accepted anywhere an array is.
        sampling_rate: The rate the audio was recorded at; must equal `expected_sampling_rate`.
        expected_sampling_rate: The rate the model was trained on.
        max_samples: When given, clips longer than this raise instead of being truncated silently. Pass `None`
            when the caller truncates explicitly (e.g. a feature extractor called with `truncation=True`).
        min_samples: Clips shorter than this raise: the fewest samples the features (e.g. one STFT window) or the
            audio encoder need.
        field: The argument name used in error messages.

    Raises:
        ValueError: for a missing or wrong sampling rate, an empty, silent (all-zero) or non-finite clip,
            multi-channel audio, or a clip longer than `max_samples` or shorter than `min_samples`. The message
            names the field, the clip's index and the fix.
    """
    validate_sampling_rate(sampling_rate, expected_sampling_rate)
    clips = _as_clip_list(raw_audio, field)
    validated = []
    for index, clip in enumerate(clips):
        name = f"{field}[{index}]" if len(clips) > 1 else field
        validated.append(_validate_clip(clip, name, sampling_rate, max_samples, min_samples))
    return validated


def _validate_clip(
    clip: np.ndarray, name: str, sampling_rate: int, max_samples: int | None, min_samples: int
) -> np.ndarray:
    if clip.ndim != 1:
        raise ValueError(
            f"`{name}` has shape {clip.shape}, but mono audio (a 1-D array of samples) is expected: downmix "
            f"multi-channel audio first, e.g. `y.mean(axis=0)` for (channels, samples) or `librosa.to_mono(y)`."
        )
    if clip.size == 0:
        raise ValueError(f"`{name}` is empty (0 samples): drop empty recordings before processing.")
    if not np.issubdtype(clip.dtype, np.number) or np.iscomplexobj(clip):
        raise ValueError(f"`{name}` has dtype {clip.dtype}; pass real-valued float samples.")
    clip = clip.astype(np.float32, copy=False)
    if not np.isfinite(clip).all():
        bad = int((~np.isfinite(clip)).sum())
        raise ValueError(
            f"`{name}` contains {bad} NaN/inf samples: repair or drop the recording (e.g. `np.nan_to_num(y)` if a "
            f"few samples are corrupt)."
        )
    peak = float(np.abs(clip).max())
    if peak > MAX_AMPLITUDE:
        raise ValueError(
            f"`{name}` has samples of magnitude {peak:.3g}, beyond 32-bit PCM full scale ({MAX_AMPLITUDE:.0f}): "
            f"this is not a waveform (float audio lies in [-1, 1]); check how it was read or scaled."
        )
    if not np.any(clip):
        raise ValueError(
            f"`{name}` is silent (every sample is 0): drop digital-silence recordings, they carry no speech and "
            f"cannot be normalised."
        )
    if max_samples is not None and clip.shape[0] > max_samples:
        raise ValueError(
            f"`{name}` has {clip.shape[0]} samples ({clip.shape[0] / sampling_rate:.2f} s), more than the limit of "
            f"{max_samples} samples ({max_samples / sampling_rate:.2f} s): split long recordings, or keep only the "
            f"first {max_samples} samples with `truncation=True` (feature extractor) / `truncate_audio=True` "
            f"(processor)."
        )
    if clip.shape[0] < min_samples:
        raise ValueError(
            f"`{name}` has {clip.shape[0]} samples ({clip.shape[0] / sampling_rate * 1000:.1f} ms), fewer than the "
            f"{min_samples} samples ({min_samples / sampling_rate * 1000:.1f} ms) the audio features need: drop such "
            f"short clips, or pad them with silence."
        )
    return clip


def check_batch_sizes(audio_batch_size: int, text_batch_size: int) -> None:
    """Raise a `ValueError` unless paired audio and text batches have the same number of rows."""
    if audio_batch_size != text_batch_size:
        raise ValueError(
            f"`audio` has {audio_batch_size} clips but `text` has {text_batch_size} transcripts: paired inputs need "
            f"one transcript per clip, in the same order."
        )


# torchcodec prefixes its errors with the C++ function, source file and line: no use to someone with a bad file.
_CPP_SOURCE = re.compile(r"^\w+, \S+\.(?:cpp|h):\d+, ")


def decode_error_message(error: Exception) -> str:
    """What a decoder's exception says about a file, in one line for the user: the first line of its message, without
    torchcodec's C++ source location, and in words where the decoder's own are no help (a file with no audio
    stream)."""
    first_line = _CPP_SOURCE.sub("", next(iter(str(error).splitlines()), "")).strip()
    if "should never happen" in first_line or "best audio stream is unknown" in first_line:
        first_line = "no audio stream found: not an audio file, or an empty one"
    return f"{type(error).__name__}: {first_line}"


def truncation_problem(source: str | os.PathLike | bytes, decoded_seconds: float) -> str:
    """`""`, or how a file is cut short: `decoded_seconds` (what the decoder returned) against the length its header
    declares. WAV headers are read directly (libsndfile clamps a WAV's frame count to what the file holds); FLAC and
    AIFF headers through `soundfile.info`; other formats declare no exact length and are not checked."""
    declared = _declared_seconds(source)
    # A millisecond of slack: rounding between sample rates, never a truncation worth a warning.
    if declared is None or decoded_seconds >= declared - 1e-3:
        return ""
    return (
        f"truncated: its header declares {declared:.2f} s of audio but the file holds {decoded_seconds:.2f} s"
    )


def _declared_seconds(source: str | os.PathLike | bytes) -> float | None:
    if isinstance(source, (bytes, bytearray)):
        head = bytes(source[:65536])
    else:
        with open(source, "rb") as f:
            head = f.read(65536)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _wav_declared_seconds(head)
    if head[:4] not in (b"fLaC", b"FORM"):
        return None
    try:
        import io

        import soundfile as sf

        info = sf.info(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else os.fspath(source))
    except Exception:  # noqa: BLE001 (an unreadable header: the decoder's own error says more)
        return None
    return info.frames / info.samplerate if info.samplerate else None


def _wav_declared_seconds(head: bytes) -> float | None:
    """The length a RIFF/WAVE header declares: its `data` chunk's size over the `fmt ` chunk's block size and rate."""
    position, rate, block_align = 12, 0, 0
    while position + 8 <= len(head):
        chunk, size = (
            head[position : position + 4],
            int.from_bytes(head[position + 4 : position + 8], "little"),
        )
        if chunk == b"fmt " and position + 22 <= len(head):
            rate = int.from_bytes(head[position + 12 : position + 16], "little")
            block_align = int.from_bytes(head[position + 20 : position + 22], "little")
        elif chunk == b"data":
            # 0 and 0xFFFFFFFF: a streamed WAV whose writer never filled the size in.
            if not rate or not block_align or size in (0, 0xFFFFFFFF):
                return None
            return size // block_align / rate
        position += 8 + size + (size & 1)
    return None
