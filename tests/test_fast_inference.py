"""Fast raw-audio inference: one Whisper encoder pass for the recogniser and the classifier's audio tower, int8 and
ONNX classifiers against the float model, and clips that arrive in chunks (`AudioStream`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, pipeline

from audiolang import (
    DsclapConfig,
    DsclapForSequenceClassification,
    DsclapProcessor,
    masked_mean_pool,
)
from audiolang.data.asr import ASRBackend, WhisperASR, validate_audio_batch
from audiolang.export import OnnxSequenceClassifier, export_onnx, quantize_int8
from audiolang.pipelines import TASK, AudioStream, AudioTextClassificationPipeline
from audiolang.pipelines.shared_encoder import EncoderSharing, encoder_sharing
from audiolang.whisper_encoder import VariableLengthWhisperEncoder

# The random Whisper never ends a transcript: a 30 s window keeps it from being decoded again in 30 s (the repetition
# guard), two tokens a second keep the transcripts short, one thread keeps the run cheap.
WHISPER_KWARGS = {"min_window_s": 30.0, "max_tokens_per_second": 2.0, "num_threads": 1, "batch_size": 2}
LABELS = {0: "navigation", 1: "music", 2: "calls"}


def _classifier_folder(root: Path, whisper: WhisperForConditionalGeneration, tokenizer, text_config) -> Path:
    """A tiny DSCLAP classifier whose audio tower is `whisper`'s encoder, saved with its processor."""
    config = DsclapConfig.from_audio_text_configs(
        whisper.config,
        text_config,
        preset="tiny",
        num_labels=len(LABELS),
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
        classifier_dropout=0.0,
        freeze_audio_encoder=True,
    )
    torch.manual_seed(0)
    model = DsclapForSequenceClassification(
        config, audio_model=VariableLengthWhisperEncoder.from_model(whisper)
    )
    model.eval().save_pretrained(root)
    DsclapProcessor.from_config(config, tokenizer).save_pretrained(root)
    return root


def _pipe(folder: Path, **kwargs) -> AudioTextClassificationPipeline:
    return pipeline(
        TASK, model=str(folder), pipeline_class=AudioTextClassificationPipeline, device="cpu", **kwargs
    )


@pytest.fixture(scope="module")
def whisper(whisper_tiny_checkpoint) -> WhisperForConditionalGeneration:
    return WhisperForConditionalGeneration.from_pretrained(whisper_tiny_checkpoint).eval()


@pytest.fixture(scope="module")
def shared_folder(tmp_path_factory, whisper, dsclap_tokenizer, dsclap_config_factory) -> Path:
    """The classifier whose tower is the recogniser's whole encoder."""
    text_config = dsclap_config_factory().text_config
    return _classifier_folder(tmp_path_factory.mktemp("shared"), whisper, dsclap_tokenizer, text_config)


@pytest.fixture(scope="module")
def top_layer_folder(tmp_path_factory, whisper, dsclap_tokenizer, dsclap_config_factory) -> Path:
    """The classifier whose tower shares the recogniser's stem and first layer; its last layer and final norm differ,
    as the pre-trained DSCLAP tower differs from tiny.en."""
    text_config = dsclap_config_factory().text_config
    folder = _classifier_folder(tmp_path_factory.mktemp("top_layer"), whisper, dsclap_tokenizer, text_config)
    model = DsclapForSequenceClassification.from_pretrained(folder)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in [
            *model.audio_model.layers[1].parameters(),
            *model.audio_model.layer_norm.parameters(),
        ]:
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def speech(dsclap_waveforms) -> list[np.ndarray]:
    # 1.5 to 2.3 s: mel frame counts of both parities, several lengths in one window batch.
    return dsclap_waveforms(24_000, 30_405, 36_811, seed=3)


def _two_pass_reference(
    folder: Path, whisper_checkpoint: Path, clips: list[np.ndarray]
) -> tuple[list[str], list[dict[str, float]]]:
    """What the shared pass must give, computed apart: the recogniser alone for the transcripts, and the classifier's
    own tower run on the recogniser's 30 s window of each clip (features from Whisper's own extractor), mean-pooled
    over the clip's frames, for the audio embedding."""
    transcripts = WhisperASR(whisper_checkpoint, **WHISPER_KWARGS).transcribe(clips, 16_000)
    model = DsclapForSequenceClassification.from_pretrained(folder).eval()
    processor = DsclapProcessor.from_pretrained(folder)
    features = WhisperFeatureExtractor.from_pretrained(whisper_checkpoint)
    scores = []
    with torch.no_grad():
        for clip, text in zip(clips, transcripts, strict=True):
            window = features([clip], sampling_rate=16_000, return_tensors="pt").input_features  # 30 s
            states = model.audio_model(window).last_hidden_state
            positions = (
                clip.size // 160 - 1
            ) // 2 + 1  # the clip's encoder positions after the stride-2 conv
            pooled = masked_mean_pool(states, torch.arange(states.shape[1])[None] < positions)
            logits = model(**processor(text=[text], return_tensors="pt"), audio_pooler_output=pooled).logits
            probabilities = logits.softmax(-1)[0]
            scores.append({LABELS[i]: float(p) for i, p in enumerate(probabilities)})
    return transcripts, scores


def _scores(results: list) -> list[dict[str, float]]:
    return [{item["label"]: item["score"] for item in result} for result in results]


def _count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize(
    ("folder_name", "sharing"),
    [("shared_folder", EncoderSharing(2, True)), ("top_layer_folder", EncoderSharing(1, False))],
)
def test_one_encoder_pass_equals_the_recogniser_and_the_tower_apart(
    request, folder_name, sharing, whisper, whisper_tiny_checkpoint, speech
):
    """Transcripts equal the recogniser's alone, scores the classifier's on its own tower's states of the same window;
    the shared layers run once per window (the recogniser's), the tower's own only where it differs."""
    folder = request.getfixturevalue(folder_name)
    recogniser = WhisperASR(whisper_tiny_checkpoint, **WHISPER_KWARGS)
    classifier = _pipe(folder, asr=recogniser, share_encoder=True)
    assert encoder_sharing(recogniser.encoder, classifier.model.audio_model) == sharing
    tower_layers = [_count_calls(layer) for layer in classifier.model.audio_model.layers]
    recogniser_first_layer = _count_calls(recogniser.encoder.layers[0])

    results = classifier(speech, sampling_rate=16_000, batch_size=3, top_k=None)

    transcripts, expected = _two_pass_reference(folder, whisper_tiny_checkpoint, speech)
    assert [result[0]["transcript"] for result in results] == transcripts
    for got, want in zip(_scores(results), expected, strict=True):
        assert got.keys() == want.keys()
        np.testing.assert_allclose([got[k] for k in want], list(want.values()), atol=1e-5)
    # Three clips in one window batch (batch_size 2 of the recogniser: two windows).
    assert recogniser_first_layer == [2]
    assert [calls[0] for calls in tower_layers] == [0] * sharing.layers + [2] * (2 - sharing.layers)


class _NotWhisper(ASRBackend):
    name = "not-whisper"

    def transcribe(self, audio: Sequence[np.ndarray], sampling_rate: int) -> list[str]:
        return ["open the window"] * len(validate_audio_batch(audio, sampling_rate))


def test_without_a_shared_encoder_the_two_passes_run(
    shared_folder, whisper_tiny_checkpoint, speech, tmp_path, caplog
):
    """Another recogniser, or a Whisper with another stem, or clips with transcripts: the results are the default
    two-pass path's, and a warning says why."""
    other = WhisperForConditionalGeneration.from_pretrained(whisper_tiny_checkpoint)
    with torch.no_grad():
        other.model.encoder.conv1.weight.mul_(1.5)
    other.save_pretrained(tmp_path / "other")
    for file in whisper_tiny_checkpoint.iterdir():  # its processor
        if not (tmp_path / "other" / file.name).exists():
            (tmp_path / "other" / file.name).write_bytes(file.read_bytes())
    for recogniser in (WhisperASR(tmp_path / "other", **WHISPER_KWARGS), _NotWhisper()):
        expected = _pipe(shared_folder, asr=recogniser)(
            speech, sampling_rate=16_000, batch_size=3, top_k=None
        )
        with caplog.at_level(logging.WARNING):
            got = _pipe(shared_folder, asr=recogniser, share_encoder=True)(
                speech, sampling_rate=16_000, batch_size=3, top_k=None
            )
        assert got == expected
        assert "share_encoder: two encoder passes" in caplog.text
        caplog.clear()
    given = ["open the window", "call mom", "play some music"]
    shared = _pipe(
        shared_folder, asr=WhisperASR(whisper_tiny_checkpoint, **WHISPER_KWARGS), share_encoder=True
    )
    assert shared(speech, transcript=given, sampling_rate=16_000, top_k=None) == _pipe(shared_folder)(
        speech, transcript=given, sampling_rate=16_000, top_k=None
    )


# The stated tolerance of the int8 classifier on the tiny model: per-tensor int8 weights move its logits by less.
INT8_LOGIT_TOLERANCE = 0.05


def _tiny_inputs(folder: Path, dsclap_waveforms) -> dict[str, torch.Tensor]:
    processor = DsclapProcessor.from_pretrained(folder)
    clips = dsclap_waveforms(7_000, 16_000, 11_234, seed=5)
    texts = ["navigate home", "turn the radio volume up", "call mom"]
    return processor(audio=clips, text=texts, sampling_rate=16_000, return_tensors="pt")


def test_int8_classifier_matches_float(shared_folder, dsclap_waveforms):
    model = DsclapForSequenceClassification.from_pretrained(shared_folder).eval()
    inputs = _tiny_inputs(shared_folder, dsclap_waveforms)
    with torch.no_grad():
        expected = model(**inputs).logits
        for keep_audio_tower in (False, True):
            quantized = quantize_int8(model, keep_audio_tower=keep_audio_tower)
            got = quantized(**inputs).logits
            assert (got - expected).abs().max() < INT8_LOGIT_TOLERANCE
            assert not torch.equal(got, expected)  # it is quantised
            sharing = encoder_sharing(model.audio_model, quantized.audio_model)
            assert (sharing == EncoderSharing(2, True)) is keep_audio_tower
    assert isinstance(model.classifier, torch.nn.Linear)  # the float model is left as it was


def test_onnx_classifier_matches_float(shared_folder, dsclap_waveforms, speech, tmp_path):
    """On shapes the export did not trace (three clips, other lengths, padding), and through the pipeline."""
    model = DsclapForSequenceClassification.from_pretrained(shared_folder).eval()
    path = export_onnx(model, DsclapProcessor.from_pretrained(shared_folder), tmp_path / "onnx")
    runtime = OnnxSequenceClassifier(path, num_threads=1)
    inputs = _tiny_inputs(shared_folder, dsclap_waveforms)
    with torch.no_grad():
        expected = model(**inputs).logits
    torch.testing.assert_close(runtime(**inputs).logits, expected, atol=1e-4, rtol=1e-4)

    texts = ["open the window", "call mom", "play some music"]
    want = _pipe(shared_folder)(speech, transcript=texts, sampling_rate=16_000, batch_size=2, top_k=None)
    got = _pipe(shared_folder, classifier=runtime)(
        speech, transcript=texts, sampling_rate=16_000, batch_size=2, top_k=None
    )
    for g, w in zip(_scores(got), _scores(want), strict=True):
        np.testing.assert_allclose([g[k] for k in w], list(w.values()), atol=1e-5)
    with pytest.raises(ValueError, match="missing: pass the processor's whole output"):
        runtime(input_ids=inputs["input_ids"])


def test_audio_stream_is_classified_once_it_ends(shared_folder, whisper_tiny_checkpoint, speech):
    """Chunks of a clip give the result of the whole clip, at its rate or another, with the recogniser or a
    transcript; the stream is read only when the pipeline runs."""
    recogniser = WhisperASR(whisper_tiny_checkpoint, **WHISPER_KWARGS)
    classifier = _pipe(shared_folder, asr=recogniser)
    clip = speech[1]
    read: list[int] = []

    def chunks(audio: np.ndarray, size: int):
        for start in range(0, audio.size, size):
            read.append(start)
            yield audio[start : start + size]

    stream = AudioStream(chunks(clip, 1_600), sampling_rate=16_000)
    assert read == []
    assert classifier(stream, top_k=None) == classifier(clip, sampling_rate=16_000, top_k=None)
    assert len(read) == -(-clip.size // 1_600)

    at_8k = clip[::2].copy()
    whole = classifier(at_8k, sampling_rate=8_000, transcript="call mom", top_k=None)
    assert classifier(AudioStream(chunks(at_8k, 999), 8_000), transcript="call mom", top_k=None) == whole

    with pytest.raises(ValueError, match="ended without a chunk"):
        classifier(AudioStream(iter([]), 16_000))
    with pytest.raises(ValueError, match="chunk 1 of the audio stream"):
        classifier(AudioStream(iter([clip[:100], np.zeros((2, 100), np.float32)]), 16_000))
