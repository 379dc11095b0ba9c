"""The neural voice of the embedded corpus (hibari-tts): pseudo-speakers, prosody, determinism, the natural share
and the test_natural split. The corpus-level checks plan the corpus (no audio); test_corpus.py checks the built tiny
corpus."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import librosa
import numpy as np
import pytest

from audiolang.data import CorpusConfig, synthesis
from audiolang.data.corpus import SPLITS, check_held_out, plan_corpus
from audiolang.data.synthesis import (
    HIBARI_SAMPLING_RATE,
    Prosody,
    hibari_inventory,
    hibari_speech,
    reshape_f0,
    shift_and_resample,
    synthesize,
)

pytest.importorskip("hibari", reason="the neural voice needs `pip install hibari-tts==0.2.1`")

TEXT = "navigate to the nearest gas station please"
SPEAKER = hibari_inventory()[0]


def f0_track(audio: np.ndarray, sr: int = 16_000) -> np.ndarray:
    """pyin's F0 (Hz) every 10 ms, NaN except on frames it calls voiced that are within 20 dB of the loudest (pyin
    also calls some near-silent frames voiced, at its lowest candidates)."""
    f0, voiced, _ = librosa.pyin(audio, fmin=65, fmax=600, sr=sr, frame_length=1024, hop_length=160)
    rms = librosa.feature.rms(y=audio, frame_length=1024, hop_length=160)[0][: f0.size]
    return np.where(voiced & (rms > 0.1 * rms.max()), f0, np.nan)


def semitones_between(low: np.ndarray, high: np.ndarray) -> float:
    """Median F0 interval, frame by frame, between two renderings with the same timing."""
    a, b = f0_track(low), f0_track(high)
    assert a.size == b.size
    interval = 12 * np.log2(b / a)
    assert np.isfinite(interval).sum() >= 20  # enough frames voiced in both
    return float(np.nanmedian(interval))


def test_pitch_and_formant_shift_moves_f0_by_the_asked_semitones():
    # A harmonic complex at 200 Hz (nothing to do with hibari) and the hibari voice itself, shifted by sox.
    t = np.arange(HIBARI_SAMPLING_RATE) / HIBARI_SAMPLING_RATE
    tone = (0.2 * sum(np.sin(2 * np.pi * 200 * h * t) / h for h in range(1, 8))).astype(np.float32)
    speech = hibari_speech(f"{TEXT}.", seed=0)
    for source in (tone, speech):
        unshifted = shift_and_resample(source, HIBARI_SAMPLING_RATE, 0.0)
        for asked in (-3.0, 2.0):
            shifted = shift_and_resample(source, HIBARI_SAMPLING_RATE, asked)
            # the duration is kept; only the 24 -> 16 kHz resampling changes the sample count
            assert shifted.size == unshifted.size == pytest.approx(source.size * 2 / 3, abs=2)
            assert semitones_between(unshifted, shifted) == pytest.approx(asked, abs=0.3)
    measured = np.nanmedian(f0_track(shift_and_resample(tone, HIBARI_SAMPLING_RATE, 0.0)))
    assert measured == pytest.approx(200, rel=0.02)


def test_emotion_pitch_scales_the_measured_f0():
    """The F0 level goes through the engine's own predicted contour: 1.3 / 0.8 is 8.4 semitones."""
    for text in (TEXT, "call my boss at the office"):
        low = synthesize(SPEAKER, text, Prosody(pitch=0.8), seed=1)
        high = synthesize(SPEAKER, text, Prosody(pitch=1.3), seed=1)
        assert semitones_between(low, high) == pytest.approx(12 * np.log2(1.3 / 0.8), abs=0.3)


def test_reshape_f0_scales_level_and_spread_of_voiced_frames_only():
    contour = np.array([0.0, -1.0, 150.0, 200.0, 300.0, 200.0, 10.0], dtype=np.float32)
    out = reshape_f0(contour, scale=1.1, spread=2.0)
    np.testing.assert_array_equal(out[[0, 1, 6]], contour[[0, 1, 6]])  # unvoiced frames untouched
    # median 200 Hz: intervals to it double in semitones, then everything is scaled by 1.1
    expected = 1.1 * 200 * 2 ** (2 * np.log2(np.array([150, 200, 300, 200]) / 200))
    np.testing.assert_allclose(out[2:6], expected, rtol=1e-5)
    np.testing.assert_array_equal(reshape_f0(contour), contour)
    assert reshape_f0(np.array([100.0, 400.0]), spread=8.0).min() >= 50.0  # never pushed into unvoiced


def test_emotion_range_widens_the_measured_intonation():
    def spread(prosody: Prosody) -> float:
        f0 = np.concatenate(
            [
                f0_track(synthesize(SPEAKER, text, prosody, seed=2))
                for text in (TEXT, "call my boss at the office")
            ]
        )
        f0 = f0[np.isfinite(f0)]
        return float(np.subtract(*np.percentile(12 * np.log2(f0), [90, 10])))

    # EMOTION_PROSODY's range reaches hibari's contour as range ** 0.5 (synthesis.HIBARI_RANGE_EXPONENT)
    assert spread(Prosody(range=1.9)) / spread(Prosody(range=0.4)) == pytest.approx(
        (1.9 / 0.4) ** 0.5, rel=0.3
    )


def test_speed_changes_the_duration():
    slow = synthesize(SPEAKER, TEXT, Prosody(rate=0.75), seed=0)
    fast = synthesize(SPEAKER, TEXT, Prosody(rate=1.25), seed=0)
    assert slow.size > 1.25 * fast.size


def test_seeded_and_identical_to_the_engine():
    from hibari import Hibari

    a = synthesize(SPEAKER, TEXT, Prosody(rate=1.1, pitch=1.05), seed=7)
    b = synthesize(SPEAKER, TEXT, Prosody(rate=1.1, pitch=1.05), seed=7)
    c = synthesize(SPEAKER, TEXT, Prosody(rate=1.1, pitch=1.05), seed=8)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert a.size == c.size and not np.array_equal(a, c)  # the seed drives the noise component only
    # With the contour unchanged, the F0 step in between gives exactly the engine's own output.
    assert np.array_equal(
        hibari_speech(f"{TEXT}.", speed=0.9, seed=3), Hibari()(f"{TEXT}.", speed=0.9, seed=3)
    )


def test_only_the_bundled_voice_is_used_never_a_download(monkeypatch, tmp_path):
    import hibari.voices

    def no_download(*args, **kwargs):
        raise AssertionError("hibari tried to download a voice")

    monkeypatch.setattr(hibari.voices, "download", no_download)
    monkeypatch.setenv("HIBARI_HOME", str(tmp_path))  # an empty voice cache
    synthesis._hibari_engine.cache_clear()
    try:
        assert synthesize(hibari_inventory()[-1], "call mom", seed=0).size > 8_000
    finally:
        synthesis._hibari_engine.cache_clear()
    assert not any(tmp_path.iterdir())


def test_pseudo_speakers_are_distinct_and_in_range():
    voices = hibari_inventory()
    settings = {(v.shift_semitones, v.pitch_offset, v.rate_offset) for v in voices}
    assert len(settings) == len(voices) == len({v.speaker_id for v in voices})
    for voice in voices:
        assert (
            synthesis.HIBARI_SHIFT_SEMITONES[0]
            <= voice.shift_semitones
            <= synthesis.HIBARI_SHIFT_SEMITONES[1]
        )
        assert synthesis.HIBARI_PITCH_OFFSET[0] <= voice.pitch_offset <= synthesis.HIBARI_PITCH_OFFSET[1]
        assert synthesis.HIBARI_RATE_OFFSET[0] <= voice.rate_offset <= synthesis.HIBARI_RATE_OFFSET[1]
    # any prefix spans the shift range: the first 8 reach both its lower and upper quarter
    shifts = [v.shift_semitones for v in voices[:8]]
    assert min(shifts) < -1.75 and max(shifts) > 0.75


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_natural_share_of_utterances_and_speakers(preset):
    config = CorpusConfig.from_preset(preset)
    assert config.natural_voice_share == 0.25
    plans = plan_corpus(config)
    for split in SPLITS:
        rows = [p for p in plans if p.split == split]
        natural = sum(p.speaker.engine == "hibari" for p in rows)
        if split == "test_natural":
            assert natural == len(rows) == config.split_sizes[split]
        else:  # a quarter, rounded
            assert abs(natural - 0.25 * len(rows)) <= 0.5
    seen = {p.speaker for p in plans if p.split in ("pretrain", "train", "validation", "test")}
    assert len(seen) == config.num_speakers
    assert sum(v.engine == "hibari" for v in seen) == round(0.25 * config.num_speakers + 0.01)


def test_test_natural_is_held_out_in_sentences_and_speakers():
    plans = plan_corpus(CorpusConfig.from_preset("default"))
    training = [p for p in plans if p.split in ("pretrain", "train", "validation")]
    natural = [p for p in plans if p.split == "test_natural"]
    assert not {p.text for p in natural} & {p.text for p in training}
    others = {p.speaker.speaker_id for p in plans if p.split != "test_natural"}
    natural_speakers = {p.speaker.speaker_id for p in natural}
    assert len(natural_speakers) == 4 and not natural_speakers & others
    # the check the builder runs refuses a plan where either leaks
    leaked_text = [*plans, replace(natural[0], split="train", id="train-x")]
    with pytest.raises(RuntimeError, match="test_natural sentence"):
        check_held_out(leaked_text)
    leaked_speaker = [*plans, replace(training[0], speaker=natural[0].speaker, id="train-y")]
    with pytest.raises(RuntimeError, match="test_natural speaker"):
        check_held_out(leaked_speaker)


def test_share_is_configurable():
    none = plan_corpus(CorpusConfig.from_preset("tiny", natural_voice_share=0.0))
    assert Counter(p.speaker.engine for p in none if p.split != "test_natural")["hibari"] == 0
    assert {p.speaker.engine for p in none if p.split == "test_natural"} == {"hibari"}
    every = plan_corpus(CorpusConfig.from_preset("tiny", natural_voice_share=1.0))
    assert {p.speaker.engine for p in every} == {"hibari"}
    half = plan_corpus(CorpusConfig.from_preset("tiny", natural_voice_share=0.5))
    train = [p for p in half if p.split == "train"]
    assert sum(p.speaker.engine == "hibari" for p in train) == len(train) // 2
    # test_natural can be left out (configurations written before it existed)
    config = CorpusConfig.from_preset("tiny")
    sizes = {s: n for s, n in config.split_sizes.items() if s != "test_natural"}
    assert "test_natural" not in {p.split for p in plan_corpus(replace(config, split_sizes=sizes))}
    with pytest.raises(ValueError, match="natural_voice_share"):
        CorpusConfig.from_preset("tiny", natural_voice_share=1.5)
    with pytest.raises(ValueError, match="hibari pseudo-speakers"):
        CorpusConfig.from_preset("tiny", num_natural_test_speakers=40)
    assert (
        CorpusConfig.from_preset("tiny").fingerprint()
        != CorpusConfig.from_preset("tiny", natural_voice_share=0.5).fingerprint()
    )
