"""CtalFeatureExtractor: equal to the paper's per-clip librosa recipe, batched without leaks, limits and persistence."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor

from audiolang import CtalFeatureExtractor

SR = 16_000
ATOL = 1e-4


def librosa_features(clip: np.ndarray) -> np.ndarray:
    """The CTAL paper's recipe, one clip at a time: `(frames, 160)`."""
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # "n_fft=2048 is too large for input signal" on clips under 2048 samples
        mel = librosa.feature.melspectrogram(
            y=clip, sr=SR, n_fft=2048, hop_length=200, win_length=800, n_mels=80
        )
    log_mel = np.log(mel + 1e-6)
    return np.concatenate([log_mel, librosa.feature.delta(log_mel)]).T


def ctal_waveforms(*lengths: int, seed: int = 0) -> list[np.ndarray]:
    """Speech-like clips: a few decaying harmonics plus noise, so bands span a wide dynamic range."""
    rng = np.random.default_rng(seed)
    clips = []
    for length in lengths:
        t = np.arange(length) / SR
        f0 = rng.uniform(90, 250)
        voiced = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
        clip = 0.3 * voiced * np.exp(-t * rng.uniform(0.5, 3)) + 0.01 * rng.standard_normal(length)
        clips.append(clip.astype(np.float32))
    return clips


@pytest.fixture(scope="module")
def raw_extractor() -> CtalFeatureExtractor:
    return CtalFeatureExtractor(do_normalize=False)


# Under n_fft (2048), at and around hop boundaries, and a few seconds.
LENGTHS = (1_600, 1_799, 2_047, 2_048, 2_999, 3_000, 3_001, 16_123, 40_000)


def test_single_clips_equal_librosa(raw_extractor: CtalFeatureExtractor) -> None:
    for clip in ctal_waveforms(*LENGTHS):
        features = raw_extractor(clip, sampling_rate=SR)["input_features"][0]
        np.testing.assert_allclose(features, librosa_features(clip), atol=ATOL, rtol=0)


def test_each_row_of_a_padded_batch_equals_its_own_librosa_result(
    raw_extractor: CtalFeatureExtractor,
) -> None:
    clips = ctal_waveforms(*LENGTHS, seed=1)
    batch = raw_extractor(clips, sampling_rate=SR, return_tensors="np")
    features, mask = batch["input_features"], batch["audio_attention_mask"]
    assert features.shape == (len(clips), 1 + 40_000 // 200, 160) and features.dtype == np.float32
    for row, clip in enumerate(clips):
        expected = librosa_features(clip)
        frames = len(expected)
        assert mask[row].tolist() == [1] * frames + [0] * (features.shape[1] - frames)
        # the last frames and their deltas are where padding would leak in
        np.testing.assert_allclose(features[row, :frames], expected, atol=ATOL, rtol=0)
        assert not features[row, frames:].any()


def test_a_tone_with_a_100_db_range_still_matches(raw_extractor: CtalFeatureExtractor) -> None:
    # log(mel + 1e-6) magnifies FFT rounding in bands far below the frame's peak: a pure tone has such bands.
    t = np.arange(20_000) / SR
    tone = (0.8 * np.sin(2 * np.pi * 440 * t) * np.exp(-t)).astype(np.float32)
    features = raw_extractor(tone, sampling_rate=SR)["input_features"][0]
    np.testing.assert_allclose(features, librosa_features(tone), atol=ATOL, rtol=0)


def test_torch_and_two_dimensional_inputs_give_the_same_features(raw_extractor: CtalFeatureExtractor) -> None:
    clips = ctal_waveforms(4_000, 4_000, seed=2)
    from_list = raw_extractor(clips, sampling_rate=SR)["input_features"]
    from_array = raw_extractor(np.stack(clips), sampling_rate=SR)["input_features"]
    from_tensor = raw_extractor(torch.from_numpy(clips[0]), sampling_rate=SR)["input_features"]
    np.testing.assert_array_equal(from_list, from_array)
    np.testing.assert_array_equal(from_list[:1], from_tensor)


def test_frame_count_is_one_plus_samples_over_hop() -> None:
    extractor = CtalFeatureExtractor()
    lengths = (1_600, 1_999, 2_000, 2_001, 2_199, 2_200)
    mask = extractor(ctal_waveforms(*lengths), sampling_rate=SR)["audio_attention_mask"]
    assert mask.sum(axis=1).tolist() == [9, 10, 11, 11, 11, 12]
    assert [extractor.num_frames(n) for n in lengths] == [9, 10, 11, 11, 11, 12]


def test_normalisation_uses_each_clips_own_frames_only(raw_extractor: CtalFeatureExtractor) -> None:
    clips = ctal_waveforms(30_000, 6_000, seed=3)
    batch = CtalFeatureExtractor()(clips, sampling_rate=SR, return_tensors="np")
    for row, clip in enumerate(clips):
        raw = librosa_features(clip)
        expected = (raw - raw.mean(0)) / np.sqrt(raw.var(0) + 1e-7)
        frames = len(raw)
        normalised = batch["input_features"][row, :frames]
        np.testing.assert_allclose(normalised, expected, atol=ATOL, rtol=0)
        np.testing.assert_allclose(normalised.mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(normalised.std(0), 1, atol=1e-3)
        assert not batch["input_features"][row, frames:].any()


def test_pt_tensors_and_static_padding() -> None:
    extractor = CtalFeatureExtractor(max_audio_frames=50)
    clips = ctal_waveforms(3_000, 5_000)
    batch = extractor(clips, sampling_rate=SR, padding="max_length", return_tensors="pt")
    assert batch["input_features"].shape == (2, 50, 160) and batch["input_features"].dtype == torch.float32
    assert batch["audio_attention_mask"].sum(dim=1).tolist() == [16, 26]
    multiple = extractor(clips, sampling_rate=SR, pad_to_multiple_of=8, return_tensors="pt")
    assert multiple["input_features"].shape == (2, 32, 160)
    torch.testing.assert_close(multiple["input_features"][:, :26], batch["input_features"][:, :26])
    with pytest.raises(ValueError, match="`padding` must be"):
        extractor(clips, sampling_rate=SR, padding=False)
    marked = CtalFeatureExtractor(padding_value=-5.0)(clips, sampling_rate=SR)["input_features"]
    assert (marked[0, 16:] == -5.0).all() and (marked[0, :16] != -5.0).all()


def test_over_long_audio_raises_unless_truncation_is_asked(raw_extractor: CtalFeatureExtractor) -> None:
    extractor = CtalFeatureExtractor(do_normalize=False, max_audio_frames=20)
    clips = ctal_waveforms(3_000, 4_000, seed=4)  # 16 and 21 frames
    with pytest.raises(
        ValueError, match=r"`audio\[1\]` has 4000 samples .* limit of 3999 samples .*truncation=True"
    ):
        extractor(clips, sampling_rate=SR)
    batch = extractor(clips, sampling_rate=SR, truncation=True)
    assert batch["input_features"].shape == (2, 20, 160)
    # truncation keeps the longest prefix that gives `max_audio_frames` frames: 20 * 200 - 1 samples
    np.testing.assert_allclose(
        batch["input_features"][1], librosa_features(clips[1][:3_999]), atol=ATOL, rtol=0
    )
    shorter = extractor(clips, sampling_rate=SR, truncation=True, max_length=12)
    assert shorter["audio_attention_mask"].sum(axis=1).tolist() == [12, 12]
    with pytest.raises(ValueError, match="`max_length` is 12 frames .* `truncation=True`"):
        extractor(clips[:1], sampling_rate=SR, padding="max_length", max_length=12)


def test_clips_too_short_for_deltas_are_an_error() -> None:
    with pytest.raises(ValueError, match=r"`audio\[1\]` has 1599 samples .* 1600 samples .* 9 frames"):
        CtalFeatureExtractor()(ctal_waveforms(4_000, 1_599), sampling_rate=SR)


BAD_AUDIO = {
    "missing sampling rate": (ctal_waveforms(4_000), None, r"`sampling_rate` is required"),
    "wrong sampling rate": (ctal_waveforms(4_000), 8_000, r"`sampling_rate` is 8000 Hz .* resample"),
    "empty": ([ctal_waveforms(4_000)[0], np.zeros(0, np.float32)], SR, r"`audio\[1\]` is empty"),
    "silent": (np.zeros(4_000, np.float32), SR, r"`audio` is silent"),
    "nan": (
        np.where(np.arange(4_000) == 7, np.nan, ctal_waveforms(4_000)[0]),
        SR,
        r"`audio` contains 1 NaN/inf",
    ),
    "stereo": ([np.stack(ctal_waveforms(4_000, 4_000))], SR, r"`audio` has shape \(2, 4000\).*mono"),
    "stereo channels last": (
        np.stack(ctal_waveforms(4_000, 4_000), axis=1),
        SR,
        r"\(samples, channels\).*mono",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_AUDIO))
def test_bad_audio_raises_a_value_error_naming_the_field(case: str) -> None:
    audio, sampling_rate, message = BAD_AUDIO[case]
    with pytest.raises(ValueError, match=message):
        CtalFeatureExtractor()(audio, sampling_rate=sampling_rate)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"feature_size": 128}, "`feature_size` must be 2 \\* num_mel_bins = 160"),
        ({"delta_width": 8}, "`delta_width` must be an odd integer"),
        ({"win_length": 4096}, "`win_length` in \\(0, n_fft\\]"),
        ({"max_audio_frames": 5}, "`max_audio_frames` must be at least `delta_width`"),
        ({"return_attention_mask": False}, "return_attention_mask"),
        ({"padding_side": "left"}, "padding_side"),
    ],
)
def test_settings_that_cannot_work_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CtalFeatureExtractor(**kwargs)


def test_save_and_reload_give_the_same_features(tmp_path: Path) -> None:
    extractor = CtalFeatureExtractor(max_audio_frames=1_000, do_normalize=False, num_mel_bins=64)
    extractor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["feature_size"] == 128 and saved["max_audio_frames"] == 1_000
    assert "mel_filters" not in saved and "window" not in saved  # rebuilt from the fields, not stored
    for reloaded in (
        CtalFeatureExtractor.from_pretrained(tmp_path),
        AutoFeatureExtractor.from_pretrained(tmp_path),
    ):
        assert type(reloaded) is CtalFeatureExtractor
        assert reloaded.to_dict() == extractor.to_dict()
        clips = ctal_waveforms(5_000, 3_000)
        np.testing.assert_array_equal(
            reloaded(clips, sampling_rate=SR)["input_features"],
            extractor(clips, sampling_rate=SR)["input_features"],
        )
