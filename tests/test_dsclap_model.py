"""DsclapConfig / DsclapModel / DsclapForSequenceClassification: the transformers model contract, on tiny configs."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import datasets
import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BertModel,
    Trainer,
    TrainingArguments,
    Wav2Vec2Model,
    pipeline,
)
from transformers.modeling_outputs import BaseModelOutputWithPooling

from audiolang import (
    DSCLAP_PRESETS,
    DsclapConfig,
    DsclapForSequenceClassification,
    DsclapModel,
    DsclapOutput,
    DsclapProcessor,
    dsclap_loss,
    masked_mean_pool,
)
from audiolang.modeling_dsclap import MAX_LOGIT_SCALE

TEXTS = ["navigate home", "play some music on the radio", "open the window", "call mom"]


@pytest.fixture
def processor(dsclap_tokenizer, dsclap_config_factory) -> DsclapProcessor:
    return DsclapProcessor.from_config(dsclap_config_factory(), dsclap_tokenizer)


@pytest.fixture
def batch(processor, dsclap_waveforms) -> dict[str, torch.Tensor]:
    """Four paired rows with different audio and text lengths, so that both modalities carry padding."""
    clips = dsclap_waveforms(8000, 5200, 6400, 3300)
    return dict(processor(audio=clips, text=TEXTS, sampling_rate=16_000, return_tensors="pt"))


def tiny_model(factory, seed: int = 0, **overrides) -> DsclapModel:
    torch.manual_seed(seed)
    return DsclapModel(factory(**overrides))


# --- configuration --------------------------------------------------------------------------------------------------


def test_presets_have_the_papers_shapes() -> None:
    paper = DsclapConfig.from_preset("paper")
    assert (paper.audio_config.model_type, paper.audio_config.hidden_size) == ("wav2vec2", 768)
    assert paper.audio_config.num_hidden_layers == 12
    assert (paper.text_config.num_hidden_layers, paper.text_config.hidden_size) == (4, 312)
    assert (paper.max_text_length, paper.max_audio_samples) == (16, 80_000)
    assert (paper.contrastive_weight, paper.matching_weight) == (0.5, 0.5)
    assert paper.logit_scale_init_value == pytest.approx(1 / 0.07)
    assert set(DSCLAP_PRESETS) == {"paper", "small", "tiny"}
    assert DsclapConfig().to_dict() == paper.to_dict()


def test_from_preset_merges_sub_config_overrides() -> None:
    config = DsclapConfig.from_preset("tiny", audio_config={"hidden_dropout": 0.0}, num_hard_negatives=4)
    assert config.audio_config.hidden_dropout == 0.0
    assert config.audio_config.hidden_size == DSCLAP_PRESETS["tiny"]["audio_config"]["hidden_size"]
    assert config.num_hard_negatives == 4
    with pytest.raises(ValueError, match="Unknown DSCLAP preset"):
        DsclapConfig.from_preset("huge")


def test_config_round_trips_through_json(tmp_path: Path) -> None:
    config = DsclapConfig.from_preset("tiny", audio_config={"model_type": "hubert"}, num_hard_negatives=3)
    config.save_pretrained(tmp_path)
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(reloaded, DsclapConfig)
    assert reloaded.audio_config.model_type == "hubert"
    name_free = {key: value for key, value in reloaded.to_dict().items() if key != "_name_or_path"}
    assert name_free == {key: value for key, value in config.to_dict().items() if key != "_name_or_path"}


@pytest.mark.parametrize(
    "field, value",
    [("num_hard_negatives", 0), ("projection_dim", 0), ("matching_weight", -0.1), ("max_text_length", 0)],
)
def test_config_rejects_invalid_values(field: str, value: float) -> None:
    with pytest.raises(Exception, match=field):
        DsclapConfig(**{field: value})


# --- forward, loss and outputs --------------------------------------------------------------------------------------


def test_forward_returns_clap_named_outputs(dsclap_config_factory, batch) -> None:
    model = tiny_model(dsclap_config_factory).eval()
    with torch.no_grad():
        out = model(**batch)
    assert isinstance(out, DsclapOutput)
    assert out.logits_per_audio.shape == (4, 4)
    torch.testing.assert_close(out.logits_per_text, out.logits_per_audio.T)
    torch.testing.assert_close(out.audio_embeds.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(out.text_embeds.norm(dim=-1), torch.ones(4))
    scale = model.logit_scale.exp()
    torch.testing.assert_close(out.logits_per_audio, scale * out.audio_embeds @ out.text_embeds.T)
    assert out.audio_model_output.pooler_output.shape == (4, 32)
    assert out.text_model_output.last_hidden_state.shape[:2] == batch["input_ids"].shape


def test_model_loss_is_the_dsclap_objective(dsclap_config_factory, batch) -> None:
    model = tiny_model(dsclap_config_factory, contrastive_weight=0.2, matching_weight=0.8).eval()
    with torch.no_grad():
        out = model(**batch)
        expected = dsclap_loss(
            out.audio_embeds,
            out.text_embeds,
            model.logit_scale.exp(),
            contrastive_weight=0.2,
            matching_weight=0.8,
        )
    torch.testing.assert_close(out.loss, expected.loss)
    parts = 0.2 * (out.audio_contrastive_loss + out.text_contrastive_loss) + 0.8 * (
        out.audio_matching_loss + out.text_matching_loss
    )
    torch.testing.assert_close(out.loss, parts)


def test_logit_scale_is_clamped_when_used(dsclap_config_factory, batch) -> None:
    model = tiny_model(dsclap_config_factory).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(1000.0))
        out = model(**batch)
    torch.testing.assert_close(out.logits_per_audio, MAX_LOGIT_SCALE * out.audio_embeds @ out.text_embeds.T)


def test_every_parameter_gets_a_gradient(dsclap_config_factory, batch) -> None:
    # A parameter without gradient (e.g. BERT's unused [CLS] pooler) makes DistributedDataParallel fail.
    model = tiny_model(dsclap_config_factory).train()
    model(**batch).loss.backward()
    assert [name for name, param in model.named_parameters() if param.grad is None] == []
    assert not any("pooler" in name for name, _ in model.named_parameters())


def test_unpaired_batches_score_without_loss_in_eval_and_fail_in_training(
    dsclap_config_factory, batch
) -> None:
    model = tiny_model(dsclap_config_factory).eval()
    one_clip = {
        "input_values": batch["input_values"][:1],
        "audio_attention_mask": batch["audio_attention_mask"][:1],
    }
    text = {key: batch[key] for key in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        out = model(**one_clip, **text)
    assert out.loss is None and out.logits_per_audio.shape == (1, 4)
    with pytest.raises(ValueError, match="paired"):
        model.train()(**one_clip, **text)


def test_missing_inputs_name_the_field(dsclap_config_factory, batch) -> None:
    model = tiny_model(dsclap_config_factory).eval()
    with pytest.raises(ValueError, match="input_values"):
        model(input_ids=batch["input_ids"])
    with pytest.raises(ValueError, match="input_ids"):
        model(input_values=batch["input_values"])


def test_get_features_return_the_forward_embeddings(dsclap_config_factory, batch) -> None:
    model = tiny_model(dsclap_config_factory).eval()
    with torch.no_grad():
        out = model(**batch)
        audio = model.get_audio_features(batch["input_values"], batch["audio_attention_mask"])
        text = model.get_text_features(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    assert isinstance(audio, BaseModelOutputWithPooling) and isinstance(text, BaseModelOutputWithPooling)
    torch.testing.assert_close(audio.pooler_output, out.audio_embeds)
    torch.testing.assert_close(text.pooler_output, out.text_embeds)


def test_masked_mean_pool_ignores_padding() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    pooled = masked_mean_pool(hidden, torch.tensor([[1, 1, 0]]))
    torch.testing.assert_close(pooled, torch.tensor([[2.0, 3.0]]))
    torch.testing.assert_close(masked_mean_pool(hidden), hidden.mean(dim=1))
    with pytest.raises(ValueError, match="frame-level mask"):
        masked_mean_pool(hidden, torch.ones(1, 5))


def test_output_flags_reach_both_encoders(dsclap_checkpoint: Path, batch) -> None:
    model = DsclapModel.from_pretrained(dsclap_checkpoint, attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True, output_attentions=True)
    assert len(out.audio_model_output.attentions) == len(out.text_model_output.attentions) == 2
    assert len(out.audio_model_output.hidden_states) == len(out.text_model_output.hidden_states) == 3


def test_hubert_audio_encoder_is_supported_and_text_encoders_are_not(dsclap_config_factory, batch) -> None:
    hubert = {
        "model_type": "hubert",
        **{k: v for k, v in DSCLAP_PRESETS["tiny"]["audio_config"].items() if k != "model_type"},
    }
    model = tiny_model(dsclap_config_factory, audio_config=hubert).eval()
    with torch.no_grad():
        assert model(**batch).logits_per_audio.shape == (4, 4)
    with pytest.raises(ValueError, match="raw-waveform encoder"):
        DsclapModel(
            DsclapConfig(
                audio_config={
                    "model_type": "bert",
                    "hidden_size": 32,
                    "num_hidden_layers": 1,
                    "num_attention_heads": 2,
                }
            )
        )


# --- saving and loading ---------------------------------------------------------------------------------------------


def test_missing_logit_scale_is_initialised_to_log_inverse_temperature(
    dsclap_checkpoint: Path, tmp_path: Path
) -> None:
    for name in os.listdir(dsclap_checkpoint):
        (tmp_path / name).write_bytes((dsclap_checkpoint / name).read_bytes())
    weights = load_file(str(tmp_path / "model.safetensors"))
    weights.pop("logit_scale")
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    model = DsclapModel.from_pretrained(tmp_path)
    assert model.logit_scale.item() == pytest.approx(math.log(1 / 0.07), abs=1e-6)


def test_from_audio_text_pretrained_keeps_encoder_weights(dsclap_config_factory, tmp_path: Path) -> None:
    config = dsclap_config_factory()
    torch.manual_seed(0)
    Wav2Vec2Model(config.audio_config).save_pretrained(tmp_path / "audio")
    # A BERT checkpoint with its [CLS] pooler, which DSCLAP does not use and must not build.
    BertModel(config.text_config).save_pretrained(tmp_path / "text")
    model = DsclapModel.from_audio_text_pretrained(
        str(tmp_path / "audio"), str(tmp_path / "text"), projection_dim=8, text_attn_implementation="eager"
    )
    assert model.config.projection_dim == 8 and model.text_projection.out_features == 8
    assert model.text_model.config._attn_implementation == "eager"
    assert model.text_model.pooler is None
    audio_weights = load_file(str(tmp_path / "audio" / "model.safetensors"))
    for name, value in model.audio_model.state_dict().items():
        torch.testing.assert_close(value, audio_weights[name], atol=0, rtol=0)
    text_weights = load_file(str(tmp_path / "text" / "model.safetensors"))
    text_state = model.text_model.state_dict()
    encoder_keys = [name for name in text_weights if not name.startswith("pooler.")]
    assert encoder_keys and set(encoder_keys) <= set(text_state)
    for name in encoder_keys:
        torch.testing.assert_close(text_state[name], text_weights[name], atol=0, rtol=0)
    assert model.logit_scale.item() == pytest.approx(math.log(1 / 0.07), abs=1e-6)


def test_trust_remote_code_loads_where_audiolang_is_not_importable(
    dsclap_checkpoint: Path, tmp_path: Path, load_without_audiolang
) -> None:
    report = load_without_audiolang(dsclap_checkpoint, tmp_path)
    assert all(module.startswith("transformers_modules.") for module in report["classes"]), report["classes"]
    assert report["loaded"] == ["audiolang"]  # only the blocking `None` entry: nothing came from the package

    model = DsclapModel.from_pretrained(dsclap_checkpoint).eval()
    processor = DsclapProcessor.from_pretrained(dsclap_checkpoint)
    inputs = processor(
        audio=[torch.linspace(-1, 1, 6000).sin().numpy()],
        text=["navigate home"],
        sampling_rate=16_000,
        return_tensors="pt",
    )
    with torch.no_grad():
        assert report["logit"] == pytest.approx(model(**inputs).logits_per_audio.item(), abs=1e-5)


def test_zero_shot_audio_classification_pipeline(dsclap_checkpoint: Path, dsclap_waveforms) -> None:
    classifier = pipeline("zero-shot-audio-classification", model=str(dsclap_checkpoint))
    clip = dsclap_waveforms(7000, seed=3)[0]
    labels = ["music", "window", "weather"]
    result = classifier(clip, candidate_labels=labels, hypothesis_template="open the {}")
    assert sorted(item["label"] for item in result) == sorted(labels)
    scores = [item["score"] for item in result]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-5)

    # The same numbers as scoring the clip against the prompts by hand.
    model = DsclapModel.from_pretrained(dsclap_checkpoint).eval()
    processor = DsclapProcessor.from_pretrained(dsclap_checkpoint)
    audio = processor(audio=[clip], sampling_rate=16_000, return_tensors="pt")
    text = processor.tokenizer([f"open the {label}" for label in labels], padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = model(**audio, **text).logits_per_audio[0].softmax(-1)
    expected = {label: prob.item() for label, prob in zip(labels, probs, strict=True)}
    assert {item["label"]: item["score"] for item in result} == pytest.approx(expected, abs=1e-5)


# --- sequence classification ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_labels", [2, 15])
def test_sequence_classification_single_label(dsclap_config_factory, batch, num_labels: int) -> None:
    torch.manual_seed(0)
    model = DsclapForSequenceClassification(dsclap_config_factory(num_labels=num_labels)).train()
    labels = torch.tensor([0, 1, 1, 0])
    out = model(**batch, labels=labels)
    assert out.logits.shape == (4, num_labels)
    assert model.config.problem_type == "single_label_classification"
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    fused = torch.cat([out.audio_model_output.pooler_output, out.text_model_output.pooler_output], dim=-1)
    torch.testing.assert_close(out.logits, model.classifier(fused))
    out.loss.backward()
    assert all(param.grad is not None for param in model.parameters())


def test_sequence_classification_multi_label(dsclap_config_factory, batch) -> None:
    torch.manual_seed(0)
    model = DsclapForSequenceClassification(dsclap_config_factory(num_labels=3))
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    out = model(**batch, labels=labels)
    assert model.config.problem_type == "multi_label_classification"
    torch.testing.assert_close(
        out.loss, torch.nn.functional.binary_cross_entropy_with_logits(out.logits, labels)
    )


def test_sequence_classification_loads_pretrained_encoders_and_freezes(
    dsclap_checkpoint: Path, batch
) -> None:
    pretrained = DsclapModel.from_pretrained(dsclap_checkpoint)
    model = DsclapForSequenceClassification.from_pretrained(
        dsclap_checkpoint, num_labels=2, freeze_audio_encoder=True
    ).train()
    for name, value in pretrained.state_dict().items():
        if name.startswith(("audio_model.", "text_model.")):
            torch.testing.assert_close(model.state_dict()[name], value, atol=0, rtol=0)
    assert not any(
        name.startswith(("audio_projection", "text_projection", "logit_scale")) for name in model.state_dict()
    )

    model(**batch, labels=torch.tensor([0, 1, 1, 0])).loss.backward()
    assert all(param.grad is None and not param.requires_grad for param in model.audio_model.parameters())
    assert all(param.grad is not None for param in model.text_model.parameters())
    assert model.classifier.weight.grad is not None


# --- single-modality classifiers (`classifier_inputs`) ------------------------------------------------------------------

AUDIO_KEYS = ("input_values", "audio_attention_mask")
TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def tiny_classifier(
    factory, classifier_inputs: str, seed: int = 0, **overrides
) -> DsclapForSequenceClassification:
    torch.manual_seed(seed)
    return DsclapForSequenceClassification(
        factory(num_labels=3, classifier_inputs=classifier_inputs, **overrides)
    )


def text_pooled_by_hand(model: DsclapForSequenceClassification, inputs: dict) -> torch.Tensor:
    """The text tower's last states averaged over the real tokens."""
    hidden = model.text_model(**{key: inputs[key] for key in TEXT_KEYS}).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    return (hidden * mask).sum(1) / mask.sum(1)


def audio_pooled_by_hand(model: DsclapForSequenceClassification, inputs: dict) -> torch.Tensor:
    """The audio tower's last states averaged over the frames of real samples, the frame count worked out from the
    convolution stem's kernels and strides."""
    hidden = model.audio_model(
        input_values=inputs["input_values"], attention_mask=inputs["audio_attention_mask"]
    ).last_hidden_state
    frames = inputs["audio_attention_mask"].sum(-1)
    audio_config = model.config.audio_config
    for kernel, stride in zip(audio_config.conv_kernel, audio_config.conv_stride, strict=True):
        frames = (frames - kernel) // stride + 1
    mask = (torch.arange(hidden.shape[1]) < frames[:, None]).unsqueeze(-1).float()
    return (hidden * mask).sum(1) / mask.sum(1)


def test_config_rejects_unknown_classifier_inputs() -> None:
    with pytest.raises(
        StrictDataclassClassValidationError,
        match=r"`classifier_inputs` must be one of \('audio_text', 'text', 'audio'\), got 'both'",
    ) as error:
        DsclapConfig(classifier_inputs="both")
    assert isinstance(error.value.__cause__, ValueError)


def test_text_classifier_reads_the_text_tower_alone(
    dsclap_config_factory, batch, processor, dsclap_waveforms
) -> None:
    model = tiny_classifier(dsclap_config_factory, "text").eval()
    assert model.classifier.in_features == model.config.text_config.hidden_size
    text = {key: batch[key] for key in TEXT_KEYS}
    other_audio = dict(
        processor(
            audio=dsclap_waveforms(4000, 9000, 7000, 5000, seed=7), sampling_rate=16_000, return_tensors="pt"
        )
    )
    # Clips too short for one frame of the audio tower, which any classifier that reads audio rejects.
    too_short = {"input_values": torch.zeros(4, 10)}
    with torch.no_grad():
        out = model(**batch)
        torch.testing.assert_close(out.logits, model.classifier(text_pooled_by_hand(model, batch)))
        assert out.audio_model_output is None and out.text_model_output is not None
        for audio in (other_audio, {}, too_short):
            torch.testing.assert_close(model(**text, **audio).logits, out.logits, atol=0, rtol=0)


def test_audio_classifier_reads_the_audio_tower_alone(dsclap_config_factory, batch, processor) -> None:
    model = tiny_classifier(dsclap_config_factory, "audio").eval()
    assert model.classifier.in_features == model.config.audio_config.hidden_size
    audio = {key: batch[key] for key in AUDIO_KEYS}
    other_text = dict(
        processor.tokenizer(
            ["close the window please", "news", "turn the radio volume up", "set a reminder"],
            padding=True,
            return_tensors="pt",
        )
    )
    # Token ids outside the text tower's vocabulary, which would fail inside its embedding.
    invalid_text = {"input_ids": torch.full((4, 3), 10**6)}
    with torch.no_grad():
        out = model(**batch)
        torch.testing.assert_close(out.logits, model.classifier(audio_pooled_by_hand(model, batch)))
        assert out.text_model_output is None and out.audio_model_output is not None
        for text in (other_text, {}, invalid_text):
            torch.testing.assert_close(model(**audio, **text).logits, out.logits, atol=0, rtol=0)


@pytest.mark.parametrize(
    "classifier_inputs, used, unused", [("text", "text", "audio"), ("audio", "audio", "text")]
)
def test_single_tower_classifier_trains_only_its_tower(
    dsclap_config_factory, batch, classifier_inputs: str, used: str, unused: str
) -> None:
    model = tiny_classifier(
        dsclap_config_factory, classifier_inputs, audio_config={"use_weighted_layer_sum": True}
    ).train()
    model(**batch, labels=torch.tensor([0, 1, 2, 0])).loss.backward()
    used_parameters = list(getattr(model, f"{used}_model").parameters())
    assert used_parameters and all(param.grad is not None for param in used_parameters)
    assert all(
        param.grad is None and not param.requires_grad
        for param in getattr(model, f"{unused}_model").parameters()
    )
    # The audio layer weights only pool audio, so they train with the audio tower alone.
    assert (
        model.audio_layer_weights.requires_grad
        == (model.audio_layer_weights.grad is not None)
        == (used == "audio")
    )
    assert model.classifier.weight.grad is not None and model.classifier.bias.grad is not None


@pytest.mark.parametrize("classifier_inputs", ["audio_text", "text", "audio"])
def test_classifier_inputs_survive_save_and_load(
    dsclap_config_factory, batch, tmp_path: Path, classifier_inputs: str
) -> None:
    model = tiny_classifier(dsclap_config_factory, classifier_inputs).eval()
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["classifier_inputs"] == classifier_inputs
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(reloaded) is DsclapForSequenceClassification
    assert reloaded.config.classifier_inputs == classifier_inputs
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits, atol=0, rtol=0)
    # Loading makes every parameter trainable again: the unused tower must be frozen once more.
    frozen = [name for name, param in model.named_parameters() if not param.requires_grad]
    assert [name for name, param in reloaded.named_parameters() if not param.requires_grad] == frozen


def test_config_without_classifier_inputs_loads_as_audio_text(
    dsclap_config_factory, batch, tmp_path: Path
) -> None:
    model = tiny_classifier(dsclap_config_factory, "audio_text").eval()
    model.save_pretrained(tmp_path)
    config_file = tmp_path / "config.json"
    saved = json.loads(config_file.read_text())
    del saved["classifier_inputs"]  # as written before the field existed
    config_file.write_text(json.dumps(saved))
    reloaded = DsclapForSequenceClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.classifier_inputs == "audio_text"
    assert reloaded.classifier.in_features == 2 * 32
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits, atol=0, rtol=0)


@pytest.mark.parametrize("classifier_inputs", ["text", "audio"])
def test_single_tower_classifier_loads_both_towers_of_a_pretrained_folder(
    dsclap_checkpoint: Path, classifier_inputs: str
) -> None:
    pretrained = DsclapModel.from_pretrained(dsclap_checkpoint).state_dict()
    model, info = DsclapForSequenceClassification.from_pretrained(
        dsclap_checkpoint, num_labels=3, classifier_inputs=classifier_inputs, output_loading_info=True
    )
    assert set(info["missing_keys"]) == {"classifier.weight", "classifier.bias"}
    encoder_weights = {
        name: value
        for name, value in model.state_dict().items()
        if name.startswith(("audio_model.", "text_model."))
    }
    assert {name.split(".")[0] for name in encoder_weights} == {"audio_model", "text_model"}
    for name, value in encoder_weights.items():
        torch.testing.assert_close(value, pretrained[name], atol=0, rtol=0)


# --- Trainer ----------------------------------------------------------------------------------------------------------


def test_trainer_trains_and_evaluates_without_labels(dsclap_config_factory, batch, tmp_path: Path) -> None:
    # `return_loss` defaults to True, so Trainer computes the contrastive loss without a `labels` column; the raw
    # `text` column is not a `forward` argument and must be dropped rather than passed on.
    columns = {key: value.tolist() for key, value in batch.items()}
    dataset = datasets.Dataset.from_dict({**columns, "text": TEXTS}).with_format("torch")
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=2,
        per_device_eval_batch_size=4,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=tiny_model(dsclap_config_factory), args=args, train_dataset=dataset, eval_dataset=dataset
    )
    assert trainer.can_return_loss and trainer.label_names == [] and not trainer.model_accepts_loss_kwargs
    assert trainer.train().training_loss > 0
    assert trainer.evaluate()["eval_loss"] > 0
