"""DsclapFeatureExtractor / DsclapProcessor / audio_utils: outputs, limits, persistence and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoProcessor

from audiolang import (
    DsclapConfig,
    DsclapFeatureExtractor,
    DsclapProcessor,
    check_batch_sizes,
    validate_raw_audio,
)


@pytest.fixture
def processor(dsclap_tokenizer) -> DsclapProcessor:
    return DsclapProcessor.from_config(DsclapConfig(), dsclap_tokenizer)


def test_paired_batch_has_every_model_input(processor, dsclap_waveforms) -> None:
    clips = dsclap_waveforms(16_000, 9_000)
    inputs = processor(
        audio=clips, text=["navigate home", "call mom"], sampling_rate=16_000, return_tensors="pt"
    )
    assert set(inputs) == {
        "input_values",
        "audio_attention_mask",
        "input_ids",
        "token_type_ids",
        "attention_mask",
    }
    assert inputs["input_values"].shape == (2, 16_000) and inputs["input_values"].dtype == torch.float32
    assert inputs["audio_attention_mask"].sum(dim=1).tolist() == [16_000, 9_000]
    assert inputs["input_values"][1, 9_000:].abs().sum() == 0
    assert inputs["input_ids"].shape[0] == 2
    assert processor.model_input_names == [
        "input_values",
        "audio_attention_mask",
        "input_ids",
        "token_type_ids",
        "attention_mask",
    ]


def test_each_clip_is_normalised_over_its_real_samples(processor, dsclap_waveforms) -> None:
    clips = dsclap_waveforms(12_000, 4_000)
    batch = processor(audio=clips, sampling_rate=16_000, return_tensors="np")["input_values"]
    alone = processor(audio=[clips[1]], sampling_rate=16_000, return_tensors="np")["input_values"][0]
    np.testing.assert_allclose(batch[1, :4_000], alone, atol=1e-6)
    assert abs(alone.mean()) < 1e-5 and alone.std() == pytest.approx(1.0, abs=1e-3)


def test_text_is_truncated_to_max_text_length(processor) -> None:
    long_text = " ".join(["play some music"] * 20)
    inputs = processor(text=[long_text, "call mom"], return_tensors="pt")
    assert inputs["input_ids"].shape == (2, 16)
    assert inputs["input_ids"][0, -1].item() == processor.tokenizer.sep_token_id
    assert processor(text=long_text, max_text_length=8, return_tensors="pt")["input_ids"].shape == (1, 8)


def test_max_length_padding_gives_static_shapes(dsclap_tokenizer, dsclap_waveforms) -> None:
    config = DsclapConfig(max_audio_samples=20_000, max_text_length=12)
    processor = DsclapProcessor.from_config(config, dsclap_tokenizer)
    inputs = processor(
        audio=dsclap_waveforms(5_000, 7_000),
        text=["navigate home", "call mom"],
        sampling_rate=16_000,
        padding="max_length",
        return_tensors="pt",
    )
    assert inputs["input_values"].shape == (2, 20_000)
    assert inputs["input_ids"].shape == (2, 12)


def test_over_long_audio_raises_unless_truncation_is_asked(processor, dsclap_waveforms) -> None:
    clips = dsclap_waveforms(8_000, 80_001)
    with pytest.raises(ValueError, match=r"`audio\[1\]` has 80001 samples .* `truncate_audio=True`"):
        processor(audio=clips, sampling_rate=16_000)
    inputs = processor(audio=clips, sampling_rate=16_000, truncate_audio=True, return_tensors="pt")
    assert inputs["input_values"].shape == (2, 80_000)
    assert inputs["audio_attention_mask"].sum(dim=1).tolist() == [8_000, 80_000]


def _stereo_channels_last(waveforms) -> np.ndarray:
    return np.stack([waveforms(8_000)[0]] * 2, axis=1)


BAD_AUDIO = {
    "missing sampling rate": (lambda w: w(4_000), None, r"`sampling_rate` is required"),
    "wrong sampling rate": (lambda w: w(4_000), 8_000, r"`sampling_rate` is 8000 Hz .* resample"),
    "empty": (lambda w: [w(4_000)[0], np.zeros(0, np.float32)], 16_000, r"`audio\[1\]` is empty"),
    "silent": (lambda w: np.zeros(4_000, np.float32), 16_000, r"`audio` is silent"),
    "nan": (
        lambda w: np.where(np.arange(4_000) == 7, np.nan, w(4_000)[0]),
        16_000,
        r"`audio` contains 1 NaN/inf",
    ),
    "inf": (lambda w: [w(4_000)[0], np.full(3_000, np.inf)], 16_000, r"`audio\[1\]` contains 3000 NaN/inf"),
    "stereo list item": (
        lambda w: [np.stack([w(4_000)[0]] * 2)],
        16_000,
        r"`audio` has shape \(2, 4000\).*mono",
    ),
    "stereo channels last": (_stereo_channels_last, 16_000, r"\(samples, channels\).*mono"),
    "3-d array": (lambda w: np.ones((2, 2, 4_000)), 16_000, r"`audio` has shape \(2, 2, 4000\).*mono"),
    "not numbers": (lambda w: ["navigate", "home"], 16_000, r"`audio` has dtype"),
}


@pytest.mark.parametrize("case", sorted(BAD_AUDIO))
def test_bad_audio_raises_a_value_error_naming_the_field(processor, dsclap_waveforms, case: str) -> None:
    make, sampling_rate, message = BAD_AUDIO[case]
    with pytest.raises(ValueError, match=message):
        processor(audio=make(dsclap_waveforms), sampling_rate=sampling_rate)


@pytest.mark.parametrize(
    "text, message",
    [
        (["navigate home"], r"`audio` has 2 clips but `text` has 1"),
        (["navigate home", "  "], r"`text\[1\]` is empty"),
        ([3, "call mom"], r"`text` must be a string or a list of strings"),
    ],
)
def test_bad_text_raises_a_value_error_naming_the_field(
    processor, dsclap_waveforms, text, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        processor(audio=dsclap_waveforms(4_000, 5_000), text=text, sampling_rate=16_000)


def test_nothing_to_process_is_an_error(processor) -> None:
    with pytest.raises(ValueError, match="Pass `audio`, `text` or both"):
        processor()


def test_validate_raw_audio_accepts_the_usual_layouts(dsclap_waveforms) -> None:
    clip = dsclap_waveforms(3_000)[0]
    for layout in (clip, clip.tolist(), torch.from_numpy(clip), [clip], np.stack([clip, clip])):
        clips = validate_raw_audio(layout, 16_000, expected_sampling_rate=16_000)
        assert all(c.dtype == np.float32 and c.shape == (3_000,) for c in clips)
    assert len(validate_raw_audio(np.stack([clip, clip]), 16_000, expected_sampling_rate=16_000)) == 2
    check_batch_sizes(2, 2)
    with pytest.raises(ValueError, match="2 clips but `text` has 3"):
        check_batch_sizes(2, 3)


def test_feature_extractor_refuses_settings_that_break_pooling() -> None:
    with pytest.raises(ValueError, match="return_attention_mask"):
        DsclapFeatureExtractor(return_attention_mask=False)
    with pytest.raises(ValueError, match="padding_side"):
        DsclapFeatureExtractor(padding_side="left")


def test_processor_folder_reloads_through_auto_classes(dsclap_tokenizer, tmp_path: Path) -> None:
    config = DsclapConfig(max_audio_samples=32_000, max_text_length=10)
    DsclapProcessor.from_config(config, dsclap_tokenizer).save_pretrained(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    assert type(processor) is DsclapProcessor
    assert processor.max_text_length == 10
    feature_extractor = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert type(feature_extractor) is DsclapFeatureExtractor
    assert feature_extractor.max_audio_samples == 32_000
    assert type(processor.feature_extractor) is DsclapFeatureExtractor
    assert processor.tokenizer.get_vocab() == dsclap_tokenizer.get_vocab()
