"""Property-based fuzzing (hypothesis) of every family's processor and feature extractor, and of the
`audio-text-classification` pipeline.

For any audio (dtype, shape, length, values: NaN, inf, denormals, constants, ...) and any text (lone surrogates,
control characters, 10,000 words, ...), a call returns a valid batch or raises a `ValueError` that names the field
(`audio`, `text`, `sampling_rate`, ...), never another exception type. Each class of bad input below is its own
parametrized case, so every class is exercised on every target. Then the results are checked against an
independent expectation: any numeric dtype and channel layout gives what the same samples give as float32 mono
clips, and the pipeline gives the model's own forward on the processor's output for its input resampled (and, for
a multi-channel file, mixed down to the channels' mean) as documented. Examples are few and derandomized: the file
runs in well under a minute on one core.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import BatchFeature, BertTokenizerFast, pipeline

from audiolang import (
    AudioTextClassificationPipeline,
    CtalFeatureExtractor,
    CtalProcessor,
    DsclapConfig,
    DsclapFeatureExtractor,
    DsclapForSequenceClassification,
    DsclapProcessor,
    LratProcessor,
    TurboConfig,
    TurboProcessor,
    train_ctal_tokenizer,
)

RATE = 16_000
# A limit small enough that "too long" is cheap to reach, large enough for CTAL's shortest clip (0.1 s).
MAX_SAMPLES = 8_000
FIELD = re.compile(r"`(audio|raw_speech|text|sampling_rate)[\[`]")
AUDIO_FIELD = re.compile(r"`(audio|raw_speech)[\[`]")
# The model refuses a clip too short for its audio encoder by the clip's index and the input it reads: a clip
# that the feature extractor lets through once resampled (1 sample at 8 kHz is 2 at 16 kHz).
MODEL_FIELD = re.compile(r"`(audio|sampling_rate|input_values)[\[`]")
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
        "LratProcessor": lambda: LratProcessor(
            CtalFeatureExtractor(max_audio_frames=MAX_SAMPLES // 200), tokenizers()["bpe"]
        ),
    }[name]()


FEATURE_EXTRACTORS = ["DsclapFeatureExtractor", "CtalFeatureExtractor"]
PROCESSORS = ["DsclapProcessor", "TurboProcessor", "CtalProcessor", "LratProcessor"]

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


# --- any numeric dtype and channel layout: what the same samples give as float32 mono clips ------------------------

DTYPES = ("float16", "float32", "float64", "int16", "int32", "bool", "object")
LAYOUTS = ("1-D", "(C, N)", "(N, C)", "3-D")


@st.composite
def raw_audio(
    draw: st.DrawFn, max_length: int = MAX_SAMPLES, layouts: tuple[str, ...] = LAYOUTS
) -> tuple[np.ndarray, str, str]:
    """`(array, dtype, layout)`: random samples in a random dtype and channel layout (drawn from `layouts`, repeats
    weigh), half of the time with a NaN/inf at a random place (float and object dtypes: integers and bools cannot
    hold one). Lengths 0 and 1 come up often."""
    length = draw(st.one_of(st.sampled_from([0, 1, 2, 400, 1_600]), st.integers(0, max_length)))
    dtype, layout = draw(st.sampled_from(DTYPES)), draw(st.sampled_from(layouts))
    channels = 1 if layout == "1-D" else draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    samples = rng.uniform(-0.9, 0.9, (channels, length))
    value = draw(st.one_of(st.none(), st.sampled_from([float("nan"), float("inf"), float("-inf")])))
    if value is not None and length and dtype.startswith(("float", "object")):
        samples[draw(st.integers(0, channels - 1)), draw(st.integers(0, length - 1))] = value
    if dtype.startswith("int"):
        samples = np.round(samples * np.iinfo(dtype).max)
    array = {"1-D": samples[0], "(C, N)": samples, "(N, C)": samples.T, "3-D": samples[None]}[layout]
    return (array > 0 if dtype == "bool" else array.astype(dtype)), dtype, layout


def float32_mono_clips(audio: np.ndarray) -> list[np.ndarray]:
    """The clips a documented layout holds, as float32 1-D arrays: one clip, or a `(batch, samples)` batch."""
    rows = [audio] if audio.ndim == 1 else list(audio)
    return [np.asarray(row, dtype=np.float32) for row in rows]


def call_target(name: str, audio: Any) -> BatchFeature:
    if name in FEATURE_EXTRACTORS:
        return target(name)(audio, sampling_rate=RATE, return_tensors="pt")
    return target(name)(audio=audio, sampling_rate=RATE, return_tensors="pt")


def outcome(call: Callable[[], Any], field: re.Pattern = FIELD) -> Any:
    """The call's result, or its ValueError (which must name a `field`); any other exception fails the test."""
    try:
        return call()
    except ValueError as error:
        assert field.search(str(error)), f"the error names no field: {error}"
        return error


@pytest.mark.parametrize("name", FEATURE_EXTRACTORS + PROCESSORS)
def test_any_dtype_and_layout_gives_what_float32_mono_clips_give(name: str) -> None:
    """bool and object samples, NaN/inf anywhere and 3-D arrays are refused by a ValueError naming `audio`; any
    other input gives exactly the batch (or the same refusal) that its clips give as a list of float32 1-D arrays:
    a float16/float64/integer clip is its float32 cast, a `(C, N)` array a batch of its C rows, and an `(N, C)`
    array (the layout `soundfile.read` returns) a refusal that says to mix channels down."""

    @settings(FUZZ, max_examples=30)
    @given(case=raw_audio())
    def check(case: tuple[np.ndarray, str, str]) -> None:
        audio, dtype, layout = case
        result = outcome(lambda: call_target(name, audio))
        numeric = dtype not in ("bool", "object")
        if not numeric or layout == "3-D" or not np.isfinite(audio.astype(np.float64)).all():
            assert isinstance(result, ValueError) and AUDIO_FIELD.search(str(result)), result
            return
        if layout == "(N, C)" and audio.shape[1] <= 2 < audio.shape[0]:
            assert isinstance(result, ValueError) and "downmix" in str(result)
            return
        reference = outcome(lambda: call_target(name, float32_mono_clips(audio)))
        assert isinstance(result, ValueError) == isinstance(reference, ValueError), (result, reference)
        if not isinstance(result, ValueError):
            assert result.keys() == reference.keys()
            for key in result:
                assert torch.equal(result[key], reference[key]), key

    check()


# --- the pipeline: the model's forward on the processor's output for its (resampled, mixed-down) input ------------

TRANSCRIPT = "play some music"
PIPELINE_RATES = (8_000, 16_000, 22_050, 44_100)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, dsclap_tokenizer, dsclap_config_factory) -> AudioTextClassificationPipeline:
    """A tiny DSCLAP classifier with random weights, saved and loaded as a user's pipeline."""
    folder = tmp_path_factory.mktemp("fuzz_pipeline")
    torch.manual_seed(0)
    config = dsclap_config_factory(num_labels=3, max_audio_samples=MAX_SAMPLES)
    DsclapForSequenceClassification(config).eval().save_pretrained(folder)
    DsclapProcessor.from_config(config, dsclap_tokenizer).save_pretrained(folder)
    return pipeline("audio-text-classification", model=str(folder), device="cpu")


def expected_scores(classifier: AudioTextClassificationPipeline, clip: np.ndarray) -> dict[str, float] | None:
    """Every label's probability: the model's forward on the processor's output for a 16 kHz float32 clip; None
    when the processor or the model refuses the clip (a ValueError naming it)."""

    def forward() -> dict[str, float]:
        inputs = classifier.processor(
            audio=[clip], text=[TRANSCRIPT], sampling_rate=RATE, return_tensors="pt"
        )
        with torch.no_grad():
            probabilities = classifier.model(**inputs).logits[0].softmax(-1)
        return {classifier.model.config.id2label[i]: float(p) for i, p in enumerate(probabilities)}

    scores = outcome(forward, MODEL_FIELD)
    return None if isinstance(scores, ValueError) else scores


def pipeline_scores(classifier: AudioTextClassificationPipeline, audio: Any, **kwargs: Any) -> Any:
    result = outcome(lambda: classifier(audio, transcript=TRANSCRIPT, top_k=None, **kwargs), MODEL_FIELD)
    return result if isinstance(result, ValueError) else {item["label"]: item["score"] for item in result}


def test_the_pipeline_on_any_waveform_is_the_models_forward_or_a_named_error(classifier) -> None:
    """A bare waveform at any rate, dtype and layout: the model's forward on the processor's output for its float32
    samples resampled to 16 kHz with soxr (`librosa.resample`'s default), as the pipeline documents; or, where
    that refuses the clip, a ValueError naming `audio` (or, from the model, a clip too short for its encoder by
    its index and `input_values`). A bool or object clip at another rate is refused, not cast and resampled."""

    @settings(FUZZ, max_examples=30)
    @given(
        case=raw_audio(max_length=MAX_SAMPLES // 3, layouts=("1-D", "1-D", "1-D", *LAYOUTS)),
        rate=st.sampled_from(PIPELINE_RATES),
    )
    def check(case: tuple[np.ndarray, str, str], rate: int) -> None:
        audio, dtype, layout = case
        scores = pipeline_scores(classifier, audio, sampling_rate=rate)
        refused = dtype in ("bool", "object") or layout != "1-D" or audio.size == 0
        if refused or not np.isfinite(audio.astype(np.float64)).all():
            assert isinstance(scores, ValueError) and AUDIO_FIELD.search(str(scores)), scores
            return
        clip = audio.astype(np.float32)
        if rate != RATE:
            clip = librosa.resample(clip, orig_sr=rate, target_sr=RATE)
        expected = expected_scores(classifier, clip)
        if expected is None:
            assert isinstance(scores, ValueError), scores
        else:
            assert scores == pytest.approx(expected, abs=1e-5)

    check()


@pytest.mark.parametrize("rate", [0, -16_000, 16_000.5, "16000"])
def test_the_pipeline_refuses_a_sampling_rate_that_is_not_a_rate(classifier, rate) -> None:
    scores = pipeline_scores(classifier, np.full(3_200, 0.1, np.float32), sampling_rate=rate)
    assert isinstance(scores, ValueError) and "`sampling_rate`" in str(scores)


def test_a_multi_channel_file_is_its_channels_mean(classifier, tmp_path: Path) -> None:
    """A WAV file of any channel count and rate (float samples, so that writing loses nothing) is classified as the
    mean of its channels, resampled to 16 kHz: what the pipeline documents, and what `librosa.load` gives."""

    @FUZZ
    @given(
        channels=st.integers(1, 4),
        seconds=st.floats(0.12, 0.4),
        rate=st.sampled_from(PIPELINE_RATES),
        seed=st.integers(0, 2**16),
    )
    def check(channels: int, seconds: float, rate: int, seed: int) -> None:
        samples = np.random.default_rng(seed).uniform(-0.9, 0.9, (int(seconds * rate), channels))
        path = tmp_path / f"clip-{channels}-{rate}-{seed}.wav"
        sf.write(path, samples.astype(np.float32), rate, subtype="FLOAT")
        mixed = samples.astype(np.float32).mean(axis=1)
        if rate != RATE:
            mixed = librosa.resample(mixed, orig_sr=rate, target_sr=RATE)
        assert pipeline_scores(classifier, str(path)) == pytest.approx(
            expected_scores(classifier, mixed), abs=1e-5
        )

    check()
