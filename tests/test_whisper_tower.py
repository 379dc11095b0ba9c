"""Whisper's encoder as the audio tower of DSCLAP and Turbo: variable-length batches with the padding masked inside
the encoder, per-clip features, layer weighting, freezing, and the save/load/Auto/remote-code contract."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from model_tester import whisper_config
from safetensors.torch import load_file, save_file
from transformers import (
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoProcessor,
    BertModel,
    Wav2Vec2BertConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    pipeline,
)
from transformers.models.whisper.modeling_whisper import WhisperEncoder, sinusoids

from audiolang import (
    DsclapConfig,
    DsclapForSequenceClassification,
    DsclapModel,
    DsclapProcessor,
    TurboForSequenceClassification,
    masked_mean_pool,
)
from audiolang.feature_extraction_dsclap import DsclapWhisperFeatureExtractor
from audiolang.whisper_encoder import VariableLengthWhisperEncoder

TEXTS = ["navigate home", "play some music on the radio", "open the window", "call mom"]
# 50, 33, 40 and 21 mel frames: odd and even counts, so both ends of the stride-2 convolution are exercised.
LENGTHS = (8000, 5290, 6400, 3470)


@pytest.fixture(scope="module")
def config_factory(dsclap_config_factory):
    """`factory(audio={...}, **overrides)`: the tiny DSCLAP preset around the tiny Whisper, without dropout."""

    def factory(audio: dict | None = None, **overrides: object) -> DsclapConfig:
        text_config = dsclap_config_factory().text_config
        return DsclapConfig.from_audio_text_configs(
            whisper_config(**(audio or {})), text_config, preset="tiny", **overrides
        )

    return factory


def tiny_model(config_factory, model_class=DsclapModel, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return model_class(config_factory(**overrides))


@pytest.fixture(scope="module")
def processor(config_factory, dsclap_tokenizer) -> DsclapProcessor:
    return DsclapProcessor.from_config(config_factory(), dsclap_tokenizer)


@pytest.fixture(scope="module")
def clips(dsclap_waveforms) -> list[np.ndarray]:
    return dsclap_waveforms(*LENGTHS)


@pytest.fixture(scope="module")
def batch(processor, clips) -> dict[str, torch.Tensor]:
    return dict(processor(audio=clips, text=TEXTS, sampling_rate=16_000, return_tensors="pt"))


@pytest.fixture(scope="module")
def checkpoint(config_factory, processor, tmp_path_factory) -> Path:
    """A saved DSCLAP model (Whisper tower with layer weighting) and its processor."""
    folder = tmp_path_factory.mktemp("dsclap_whisper")
    tiny_model(config_factory, audio={"use_weighted_layer_sum": True}).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pretrained_folders(config_factory, tmp_path_factory) -> tuple[Path, Path]:
    """A full float16 Whisper checkpoint (encoder and decoder, as the CTranslate2 converter writes one) and a BERT
    checkpoint with its pooler."""
    root = tmp_path_factory.mktemp("pretrained")
    torch.manual_seed(1)
    WhisperForConditionalGeneration(whisper_config()).half().save_pretrained(root / "whisper")
    BertModel(config_factory().text_config).save_pretrained(root / "text")
    return root / "whisper", root / "text"


# --- the encoder -----------------------------------------------------------------------------------------------------


def test_encoder_is_whispers_on_30_seconds() -> None:
    config = whisper_config()
    torch.manual_seed(0)
    reference = WhisperEncoder(config).eval()
    encoder = VariableLengthWhisperEncoder(config).eval()
    assert list(encoder.state_dict()) == list(reference.state_dict())
    encoder.load_state_dict(reference.state_dict())
    features = torch.randn(2, 80, 3000)
    with torch.no_grad():
        torch.testing.assert_close(encoder(features).last_hidden_state, reference(features).last_hidden_state)
        with pytest.raises(ValueError, match="3000"):
            encoder(torch.randn(1, 80, 3002))


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_encoder_masks_padding_inside_attention(implementation: str) -> None:
    torch.manual_seed(0)
    encoder = VariableLengthWhisperEncoder(whisper_config(attn_implementation=implementation)).eval()
    frames = [50, 33, 40, 21]
    spectrograms = [torch.randn(80, n) for n in frames]
    padded = torch.full((4, 80, 50), 3.0)  # a padding value the encoder must not see
    mask = torch.zeros(4, 50, dtype=torch.long)
    for row, spectrogram in enumerate(spectrograms):
        padded[row, :, : spectrogram.shape[1]] = spectrogram
        mask[row, : spectrogram.shape[1]] = 1
    with torch.no_grad():
        together = encoder(padded, mask).last_hidden_state
        for row, spectrogram in enumerate(spectrograms):
            alone = encoder(spectrogram[None]).last_hidden_state[0]
            assert alone.shape[0] == (frames[row] + 1) // 2
            torch.testing.assert_close(together[row, : alone.shape[0]], alone, atol=1e-5, rtol=1e-5)


def test_encoder_built_from_a_full_whisper_model_keeps_its_weights() -> None:
    torch.manual_seed(0)
    whisper = WhisperForConditionalGeneration(whisper_config()).half()
    encoder = VariableLengthWhisperEncoder.from_model(whisper)
    assert encoder.dtype == torch.float16 and not hasattr(encoder, "decoder")
    for name, value in whisper.model.encoder.state_dict().items():
        torch.testing.assert_close(encoder.state_dict()[name], value, atol=0, rtol=0)


# --- features and processor ------------------------------------------------------------------------------------------


def test_each_clip_gets_whispers_features_of_the_clip_alone(processor, clips) -> None:
    features = processor(audio=clips, sampling_rate=16_000, return_tensors="np")
    assert set(features) == {"input_features", "audio_attention_mask"}
    assert features["input_features"].shape == (4, 80, 50)
    assert features["audio_attention_mask"].sum(axis=1).tolist() == [n // 160 for n in LENGTHS]
    whisper = WhisperFeatureExtractor()
    for row, clip in enumerate(clips):
        alone = whisper(clip, sampling_rate=16_000, padding="longest", return_tensors="np")["input_features"][
            0
        ]
        frames = alone.shape[1]
        np.testing.assert_array_equal(features["input_features"][row, :, :frames], alone)
        np.testing.assert_array_equal(features["input_features"][row, :, frames:], 0.0)


def test_feature_extractor_limits(dsclap_waveforms) -> None:
    extractor = DsclapWhisperFeatureExtractor(max_audio_samples=16_000)
    short, long = dsclap_waveforms(399, 16_001)
    with pytest.raises(ValueError, match="399 samples.*400 samples"):
        extractor([short], sampling_rate=16_000)
    with pytest.raises(ValueError, match="more than the limit of 16000"):
        extractor([long], sampling_rate=16_000)
    truncated = extractor([long], sampling_rate=16_000, truncation=True, return_tensors="np")
    assert truncated["input_features"].shape == (1, 80, 100)
    padded = extractor([long[:800]], sampling_rate=16_000, padding="max_length")
    assert np.asarray(padded["audio_attention_mask"]).tolist() == [[1] * 5 + [0] * 95]
    with pytest.raises(ValueError, match="max_audio_samples"):
        DsclapWhisperFeatureExtractor(max_audio_samples=30 * 16_000 + 1)
    with pytest.raises(ValueError, match="sampling_rate"):
        extractor([long], sampling_rate=8_000)


def test_processor_and_feature_extractor_reload(checkpoint: Path, processor, clips) -> None:
    reloaded = AutoProcessor.from_pretrained(checkpoint)
    assert type(reloaded) is DsclapProcessor
    extractor = AutoFeatureExtractor.from_pretrained(checkpoint)
    assert type(extractor) is type(reloaded.feature_extractor) is DsclapWhisperFeatureExtractor
    assert extractor.to_dict() == processor.feature_extractor.to_dict()
    expected = processor(audio=clips, text=TEXTS, sampling_rate=16_000, return_tensors="np")
    outputs = reloaded(audio=clips, text=TEXTS, sampling_rate=16_000, return_tensors="np")
    assert set(outputs) == set(expected) == set(reloaded.model_input_names)
    for key, value in expected.items():
        np.testing.assert_array_equal(outputs[key], value)


# --- the dual encoders -----------------------------------------------------------------------------------------------


def test_wrong_audio_input_names_the_expected_one(config_factory, batch) -> None:
    model = tiny_model(config_factory).eval()
    assert model.main_input_name == "input_features"
    waveforms = torch.randn(4, 8000)
    with pytest.raises(ValueError, match="`input_features` is required.*got `input_values`"):
        model(input_values=waveforms, input_ids=batch["input_ids"])


@pytest.mark.parametrize("tower", ["whisper", "wav2vec2"])
def test_weighted_layer_sum_pools_softmax_weighted_hidden_states(
    tower: str, config_factory, dsclap_config_factory, batch, processor, dsclap_tokenizer, clips
) -> None:
    if tower == "whisper":
        config = config_factory(audio={"use_weighted_layer_sum": True})
        inputs = batch
    else:
        config = dsclap_config_factory(audio_config={"use_weighted_layer_sum": True})
        inputs = DsclapProcessor.from_config(config, dsclap_tokenizer)(
            audio=clips, text=TEXTS, sampling_rate=16_000, return_tensors="pt"
        )
    torch.manual_seed(0)
    model = DsclapModel(config).eval()
    torch.testing.assert_close(model.audio_layer_weights.detach(), torch.full((3,), 1 / 3))
    with torch.no_grad():
        model.audio_layer_weights.copy_(torch.tensor([2.0, -1.0, 0.5]))
        out = model(**inputs)
    states = out.audio_model_output.hidden_states
    assert len(states) == 3
    weights = torch.tensor([2.0, -1.0, 0.5]).softmax(-1)
    mixed = sum(weight * state for weight, state in zip(weights, states, strict=True))
    frame_mask = model.audio_model._get_feature_vector_attention_mask(
        mixed.shape[1], inputs["audio_attention_mask"]
    )
    torch.testing.assert_close(out.audio_model_output.pooler_output, masked_mean_pool(mixed, frame_mask))
    out_train = model.train()(**inputs)
    out_train.loss.backward()
    assert model.audio_layer_weights.grad is not None and model.audio_layer_weights.grad.abs().sum() > 0


@pytest.mark.parametrize("tower", ["whisper", "wav2vec2"])
def test_freezing_switches_survive_from_pretrained(
    tower: str, config_factory, dsclap_config_factory, tmp_path: Path
) -> None:
    switches = {"freeze_audio_feature_encoder": True, "num_frozen_audio_layers": 1}
    if tower == "whisper":
        config = config_factory(**switches)
        stem, layers = ("audio_model.conv1.", "audio_model.conv2."), "audio_model.layers."
        fixed = {"audio_model.embed_positions.weight"}
    else:
        config = dsclap_config_factory(**switches)
        stem, layers = ("audio_model.feature_extractor.",), "audio_model.encoder.layers."
        fixed = set()
    torch.manual_seed(0)
    DsclapModel(config).save_pretrained(tmp_path)
    for model in (DsclapModel(config), DsclapModel.from_pretrained(tmp_path)):
        frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
        expected = {
            name
            for name, _ in model.named_parameters()
            if name.startswith((*stem, f"{layers}0.")) or name in fixed
        }
        assert frozen == expected and any(
            name.startswith(f"{layers}1.") for name, _ in model.named_parameters()
        )
    with pytest.raises(StrictDataclassClassValidationError, match="num_frozen_audio_layers"):
        config_factory(num_frozen_audio_layers=3)


def test_too_short_clips_name_the_encoders_minimum(dsclap_config_factory, config_factory) -> None:
    torch.manual_seed(0)
    wav2vec2 = DsclapModel(dsclap_config_factory()).eval()
    text = {"input_ids": torch.tensor([[2, 5, 3], [2, 6, 3]])}
    mask = torch.ones(2, 1000, dtype=torch.long)
    mask[1, 399:] = 0
    with pytest.raises(ValueError, match="Clip 1 has 399 samples of `input_values`, fewer than the 400"):
        wav2vec2(input_values=torch.randn(2, 1000), audio_attention_mask=mask, **text)
    with pytest.raises(ValueError, match="Clip 0 has 399 samples"):
        wav2vec2(input_values=torch.randn(2, 399), **text)
    whisper = tiny_model(config_factory).eval()
    frame_mask = torch.tensor([[1, 1, 1, 1], [0, 0, 0, 0]])
    with pytest.raises(ValueError, match="Clip 1 has 0 frames of `input_features`, fewer than the 1"):
        whisper(input_features=torch.randn(2, 80, 4), audio_attention_mask=frame_mask, **text)


def test_spectrogram_encoders_other_than_whisper_are_towers_too(dsclap_config_factory) -> None:
    """wav2vec2-BERT reads `input_features` `(batch, frames, 160)`: the same code path takes it."""
    audio = Wav2Vec2BertConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        output_hidden_size=32,
        conv_depthwise_kernel_size=3,
    )
    config = DsclapConfig.from_audio_text_configs(audio, dsclap_config_factory().text_config, preset="tiny")
    torch.manual_seed(0)
    model = DsclapModel(config).eval()
    features = torch.randn(2, 12, 160)
    mask = torch.tensor([[1] * 12, [1] * 7 + [0] * 5])
    with torch.no_grad():
        out = model(
            input_features=features, audio_attention_mask=mask, input_ids=torch.tensor([[2, 5, 3]] * 2)
        )
    expected = masked_mean_pool(out.audio_model_output.last_hidden_state, mask.bool())
    torch.testing.assert_close(out.audio_model_output.pooler_output, expected)
    with pytest.raises(ValueError, match="No feature extractor for a 'wav2vec2-bert' audio encoder"):
        DsclapProcessor.from_config(config, None)


# --- building from pretrained encoders, saving, loading --------------------------------------------------------------


def test_from_audio_text_pretrained_takes_whispers_encoder_and_drops_the_decoder(pretrained_folders) -> None:
    whisper_folder, text_folder = pretrained_folders
    model = DsclapModel.from_audio_text_pretrained(
        str(whisper_folder),
        str(text_folder),
        preset="tiny",
        num_hard_negatives=3,
        num_frozen_audio_layers=1,
        audio_use_weighted_layer_sum=True,
    )
    assert type(model.audio_model) is VariableLengthWhisperEncoder
    assert (model.config.projection_dim, model.config.num_hard_negatives) == (16, 3)
    assert model.audio_layer_weights.shape == (3,) and model.dtype == torch.float32
    assert not any("decoder" in name for name in model.state_dict())
    assert not any(p.requires_grad for p in model.audio_model.layers[0].parameters())
    assert model.text_model.pooler is None
    checkpoint = load_file(str(whisper_folder / "model.safetensors"))
    for name, value in model.audio_model.state_dict().items():
        torch.testing.assert_close(value, checkpoint[f"model.encoder.{name}"].float(), atol=0, rtol=0)
    assert model.logit_scale.item() == pytest.approx(math.log(1 / 0.07), abs=1e-6)


def test_turbo_takes_whisper_from_a_dsclap_folder_and_from_pretrained_encoders(
    checkpoint: Path, pretrained_folders, batch
) -> None:
    dsclap = DsclapModel.from_pretrained(checkpoint)
    turbo = TurboForSequenceClassification.from_pretrained(checkpoint, num_labels=3)
    state = turbo.state_dict()
    for name, value in dsclap.state_dict().items():
        if name.startswith(("audio_model.", "text_model.", "audio_layer_weights")):
            torch.testing.assert_close(state[name], value, atol=0, rtol=0, msg=name)
    # Turbo's two dropout views reach Whisper's layers, whose config calls the hidden dropout `dropout`.
    assert turbo.audio_model.layers[0].dropout == turbo.config.hidden_dropout == 0.2

    whisper_folder, text_folder = pretrained_folders
    built = TurboForSequenceClassification.from_audio_text_pretrained(
        str(whisper_folder), str(text_folder), preset="tiny", num_labels=3
    )
    assert built.config.joint_dim == 16 and built.audio_model.layers[0].dropout == 0.2
    out = built.train()(**batch, labels=torch.tensor([0, 2, 1, 2]))
    out.loss.backward()
    assert built.audio_model.conv1.weight.grad is not None


def test_save_load_and_auto_classes(checkpoint: Path, batch) -> None:
    model = AutoModel.from_pretrained(checkpoint).eval()
    assert type(model) is DsclapModel and type(model.audio_model) is VariableLengthWhisperEncoder
    assert not model.audio_model.embed_positions.weight.requires_grad
    reference = DsclapModel.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits_per_audio, reference(**batch).logits_per_audio)
    classifier = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=2)
    assert type(classifier) is DsclapForSequenceClassification
    torch.testing.assert_close(classifier.audio_layer_weights, model.audio_layer_weights)


def test_missing_layer_weights_and_position_table_are_initialised(checkpoint: Path, tmp_path: Path) -> None:
    for path in checkpoint.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    weights = load_file(str(tmp_path / "model.safetensors"))
    del weights["audio_layer_weights"], weights["audio_model.embed_positions.weight"]
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    model = DsclapModel.from_pretrained(tmp_path)
    torch.testing.assert_close(model.audio_layer_weights.detach(), torch.full((3,), 1 / 3))
    torch.testing.assert_close(model.audio_model.embed_positions.weight, sinusoids(1500, 64))


def test_trust_remote_code_loads_where_audiolang_is_not_importable(
    checkpoint: Path, tmp_path: Path, load_without_audiolang
) -> None:
    report = load_without_audiolang(checkpoint, tmp_path)
    assert all(module.startswith("transformers_modules.") for module in report["classes"]), report["classes"]
    assert report["loaded"] == ["audiolang"]
    model = DsclapModel.from_pretrained(checkpoint).eval()
    inputs = DsclapProcessor.from_pretrained(checkpoint)(
        audio=[torch.linspace(-1, 1, 6000).sin().numpy()],
        text=["navigate home"],
        sampling_rate=16_000,
        return_tensors="pt",
    )
    with torch.no_grad():
        assert report["logit"] == pytest.approx(model(**inputs).logits_per_audio.item(), abs=1e-5)


def test_zero_shot_audio_classification_pipeline(checkpoint: Path, clips) -> None:
    classifier = pipeline("zero-shot-audio-classification", model=str(checkpoint))
    labels = ["music", "window", "weather"]
    result = classifier(clips[1], candidate_labels=labels, hypothesis_template="open the {}")
    model = DsclapModel.from_pretrained(checkpoint).eval()
    processor = DsclapProcessor.from_pretrained(checkpoint)
    audio = processor(audio=[clips[1]], sampling_rate=16_000, return_tensors="pt")
    text = processor.tokenizer([f"open the {label}" for label in labels], padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = model(**audio, **text).logits_per_audio[0].softmax(-1)
    expected = {label: prob.item() for label, prob in zip(labels, probs, strict=True)}
    assert {item["label"]: item["score"] for item in result} == pytest.approx(expected, abs=1e-5)
