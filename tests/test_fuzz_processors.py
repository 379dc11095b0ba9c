"""Property-based fuzzing (hypothesis) of every family's processor and feature extractor.

For any audio (dtype, shape, length, values: NaN, inf, denormals, constants, ...) and any text (lone surrogates,
control characters, 10,000 words, ...), a call returns a valid batch or raises a `ValueError` that names the field
(`audio`, `text`, `sampling_rate`, ...), never another exception type. Each class of bad input below is its own
parametrized case, so every class is exercised on every target; the example counts keep the file under a minute.
LRAT reuses CTAL's feature extractor and processor, so the CTAL targets cover it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import BatchFeature, BertTokenizerFast

from audiolang import (
    CtalFeatureExtractor,
    CtalProcessor,
    DsclapConfig,
    DsclapFeatureExtractor,
    DsclapProcessor,
    TurboConfig,
    TurboProcessor,
    train_ctal_tokenizer,
)

RATE = 16_000
# A limit small enough that "too long" is cheap to reach, large enough for CTAL's shortest clip (0.1 s).
MAX_SAMPLES = 8_000
FIELD = re.compile(r"`(audio|raw_speech|text|sampling_rate)[\[`]")
FUZZ = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@functools.cache
def tokenizers() -> dict[str, Any]:
    words = [
        "turn",
        "on",
        "the",
        "radio",
        "open",
        "window",
        "call",
        "mom",
        "navigate",
        "home",
        "play",
        "music",
    ]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    bpe = train_ctal_tokenizer([" ".join(words)] * 4, vocab_size=300, min_frequency=1)
    return {"bert": BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}), "bpe": bpe}


def _dsclap_processor(cls: type) -> Any:
    config = DsclapConfig.from_preset("tiny", max_audio_samples=MAX_SAMPLES)
    return cls(
        DsclapFeatureExtractor(max_audio_samples=MAX_SAMPLES), tokenizers()["bert"], config.max_text_length
    )


@functools.cache
def target(name: str) -> Any:
    """The object under test, built once (fast tokenizers: they are what fails on bad text)."""
    return {
        "DsclapFeatureExtractor": lambda: DsclapFeatureExtractor(max_audio_samples=MAX_SAMPLES),
        "CtalFeatureExtractor": lambda: CtalFeatureExtractor(max_audio_frames=MAX_SAMPLES // 200),
        "DsclapProcessor": lambda: _dsclap_processor(DsclapProcessor),
        "TurboProcessor": lambda: TurboProcessor.from_config(
            TurboConfig(max_audio_samples=MAX_SAMPLES), tokenizers()["bert"]
        ),
        "CtalProcessor": lambda: CtalProcessor(
            CtalFeatureExtractor(max_audio_frames=MAX_SAMPLES // 200), tokenizers()["bpe"]
        ),
    }[name]()


FEATURE_EXTRACTORS = ["DsclapFeatureExtractor", "CtalFeatureExtractor"]
PROCESSORS = ["DsclapProcessor", "TurboProcessor", "CtalProcessor"]

# --- audio -------------------------------------------------------------------------------------------------------

lengths = st.integers(0, MAX_SAMPLES + 400)
finite = st.floats(-1.0, 1.0, allow_nan=False, width=32)


@st.composite
def waveform(
    draw: st.DrawFn, values: st.SearchStrategy[float] = finite, dtype: Any = np.float32
) -> np.ndarray:
    length = draw(lengths)
    fill = draw(st.sampled_from(["random", "constant"]))
    if fill == "constant":
        return np.full(length, draw(values), dtype=dtype)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return (rng.uniform(-1, 1, length) * draw(st.floats(0, 1))).astype(dtype)


def _spiked(value: float) -> st.SearchStrategy[np.ndarray]:
    """A clip with `value` at a few positions."""

    @st.composite
    def make(draw: st.DrawFn) -> np.ndarray:
        clip = draw(waveform())
        if clip.size:
            clip[draw(st.lists(st.integers(0, clip.size - 1), min_size=1, max_size=3))] = value
        return clip

    return make()


# Each class of bad (or unusual) audio input: a strategy for `(audio, sampling_rate)`.
AUDIO_CLASSES: dict[str, st.SearchStrategy[tuple[Any, Any]]] = {
    "valid float32 clip": st.tuples(waveform(), st.just(RATE)),
    "float64 / float16": st.tuples(
        st.one_of(waveform(dtype=np.float64), waveform(dtype=np.float16)), st.just(RATE)
    ),
    "integer PCM": st.tuples(
        st.builds(
            lambda c, t: (c * np.iinfo(t).max).astype(t), waveform(), st.sampled_from([np.int16, np.int32])
        ),
        st.just(RATE),
    ),
    "bool / complex / object / str dtype": st.tuples(
        st.one_of(
            st.builds(lambda c: c > 0, waveform()),
            st.builds(lambda c: c.astype(np.complex64), waveform()),
            st.builds(lambda c: c.astype(object), waveform()),
            st.builds(lambda n: np.array(["a"] * n), st.integers(1, 50)),
        ),
        st.just(RATE),
    ),
    "empty clip": st.tuples(
        st.sampled_from([np.zeros(0, np.float32), [], [np.zeros(0, np.float32)]]), st.just(RATE)
    ),
    "scalar (0-d)": st.tuples(st.builds(np.float32, finite), st.just(RATE)),
    "batch: 2-D array": st.tuples(
        st.builds(
            lambda n, t: np.random.default_rng(n).uniform(-1, 1, (n, t)).astype(np.float32),
            st.integers(1, 4),
            st.integers(0, 3000),
        ),
        st.just(RATE),
    ),  # fmt: skip
    "multi-channel (samples, channels) / (channels, samples)": st.tuples(
        st.builds(
            lambda c, k, flip: np.stack([c] * k, axis=0 if flip else 1),
            waveform(),
            st.integers(2, 3),
            st.booleans(),
        ),
        st.just(RATE),
    ),  # fmt: skip
    ">= 3-D array": st.tuples(
        st.builds(
            lambda shape: np.ones(shape, np.float32), st.lists(st.integers(1, 4), min_size=3, max_size=4)
        ),
        st.just(RATE),
    ),
    "ragged list of clips": st.tuples(st.lists(waveform(), min_size=1, max_size=4), st.just(RATE)),
    "nested python lists": st.tuples(
        st.one_of(
            st.lists(finite, max_size=3000),
            st.lists(st.lists(finite, max_size=50), min_size=1, max_size=3),
        ),
        st.just(RATE),
    ),
    "torch tensor": st.tuples(st.builds(torch.from_numpy, waveform()), st.just(RATE)),
    "NaN samples": st.tuples(_spiked(float("nan")), st.just(RATE)),
    "inf samples": st.tuples(_spiked(float("inf")), st.just(RATE)),
    "denormal samples": st.tuples(waveform(values=st.sampled_from([1e-45, 1e-40, -1e-38])), st.just(RATE)),
    "huge samples": st.tuples(_spiked(3e38), st.just(RATE)),
    "silence / constants": st.tuples(
        waveform(values=st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5])), st.just(RATE)
    ),
    "too short": st.tuples(
        st.builds(lambda n: np.full(n, 0.1, np.float32), st.integers(1, 1700)), st.just(RATE)
    ),
    "too long": st.tuples(
        st.builds(lambda n: np.full(n, 0.1, np.float32), st.integers(MAX_SAMPLES + 1, MAX_SAMPLES + 3000)),
        st.just(RATE),
    ),
    "None / non-array objects": st.tuples(
        st.sampled_from([None, "clip.wav", {"array": [0.1]}, object(), 3]), st.just(RATE)
    ),
    "wrong, missing or non-integer sampling_rate": st.tuples(
        waveform(),
        st.sampled_from([None, 8000, 44100, "16000", 16000.5, float("nan"), float("inf"), True, -16000, 0]),
    ),
}

# --- text --------------------------------------------------------------------------------------------------------

surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
control = st.characters(categories=["Cc", "Cf"])
TEXT_CLASSES: dict[str, st.SearchStrategy[Any]] = {
    "any unicode": st.text(min_size=1, max_size=200),
    "lone surrogates": st.builds(
        lambda a, s, b: a + s + b, st.text(max_size=20), surrogate, st.text(max_size=20)
    ),
    "control characters / NUL": st.text(control, min_size=1, max_size=50),
    "10k words": st.builds(lambda n: " ".join(["radio"] * n), st.integers(9_000, 10_000)),
    "empty / whitespace only": st.text(st.sampled_from(" \t\n\r\u3000\u00a0"), max_size=5),
    "list of texts": st.lists(st.text(max_size=40), min_size=1, max_size=4),
    "non-str items / containers": st.sampled_from(
        [None, 3, [], ["ok", None], [b"bytes"], ("ok", 1.5), {"a": 1}]
    ),
}


def assert_valid_or_named_error(call: Callable[[], BatchFeature]) -> BatchFeature | None:
    """The call's batch, or None after a ValueError that names a field; any other exception fails the test."""
    try:
        return call()
    except ValueError as error:
        assert FIELD.search(str(error)), f"the error names no field: {error}"
        return None


def assert_valid_audio_batch(batch: BatchFeature, num_clips: int) -> None:
    values = batch.get("input_values", batch.get("input_features"))
    mask = batch["audio_attention_mask"]
    assert values.shape[0] == mask.shape[0] == num_clips
    assert values.dtype == torch.float32 and torch.isfinite(values).all()
    assert (mask.sum(dim=1) > 0).all()


def num_clips(audio: Any) -> int:
    if (
        isinstance(audio, (list, tuple))
        and all(np.ndim(item) == 1 for item in audio)
        and np.ndim(audio[0]) == 1
    ):
        return len(audio)
    return np.asarray(audio).shape[0] if np.ndim(audio) == 2 else 1


@pytest.mark.parametrize("kind", sorted(AUDIO_CLASSES))
@pytest.mark.parametrize("name", FEATURE_EXTRACTORS + PROCESSORS)
def test_any_audio_gives_a_batch_or_a_named_value_error(name: str, kind: str) -> None:
    @FUZZ
    @given(case=AUDIO_CLASSES[kind])
    def check(case: tuple[Any, Any]) -> None:
        audio, sampling_rate = case
        if name in FEATURE_EXTRACTORS:
            call = lambda: target(name)(audio, sampling_rate=sampling_rate, return_tensors="pt")  # noqa: E731
        else:
            call = lambda: target(name)(audio=audio, sampling_rate=sampling_rate, return_tensors="pt")  # noqa: E731
        batch = assert_valid_or_named_error(call)
        if batch is not None:
            assert_valid_audio_batch(batch, num_clips(audio))

    check()


@pytest.mark.parametrize("kind", sorted(TEXT_CLASSES))
@pytest.mark.parametrize("name", PROCESSORS)
def test_any_text_gives_a_batch_or_a_named_value_error(name: str, kind: str) -> None:
    processor = target(name)

    @FUZZ
    @given(text=TEXT_CLASSES[kind], with_audio=st.booleans())
    def check(text: Any, with_audio: bool) -> None:
        # With audio, one clip: a list of several texts is then also a batch-size mismatch.
        audio = np.full(3200, 0.1, np.float32) if with_audio else None
        batch = assert_valid_or_named_error(
            lambda: processor(audio=audio, text=text, sampling_rate=RATE, return_tensors="pt")
        )
        if batch is not None and text is None:  # audio alone
            assert "input_ids" not in batch and batch["audio_attention_mask"].shape[0] == 1
        elif batch is not None:
            rows = 1 if isinstance(text, str) else len(text)
            assert batch["input_ids"].shape[0] == batch["attention_mask"].shape[0] == rows
            assert batch["input_ids"].shape[1] <= processor.max_text_length
            assert (batch["attention_mask"].sum(dim=1) > 0).all()

    check()


def test_the_fuzzed_classes_are_the_ones_the_readme_counts() -> None:
    assert len(AUDIO_CLASSES) + len(TEXT_CLASSES) == 28
