"""Turbo: the six-term loss by hand, the two dropout passes, the three objectives, save/load, Auto, DSCLAP encoders."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import AutoConfig, AutoProcessor

from audiolang import (
    DsclapModel,
    TurboConfig,
    TurboForSequenceClassification,
    TurboModel,
    TurboProcessor,
    turbo_loss,
)

TEXTS = ["navigate home", "play some music on the radio", "open the window", "call mom"]
LABELS = torch.tensor([0, 2, 1, 2])


def reference_info_nce(queries: torch.Tensor, keys: torch.Tensor, temperature: float) -> float:
    """Eq. 2/3 in plain Python: mean over rows i of -log(e^{sim(q_i,k_i)/t} / sum_j e^{sim(q_i,k_j)/t})."""
    total = 0.0
    for i, query in enumerate(queries.tolist()):
        sims = []
        for key in keys.tolist():
            dot = sum(a * b for a, b in zip(query, key, strict=True))
            norms = math.sqrt(sum(a * a for a in query)) * math.sqrt(sum(b * b for b in key))
            sims.append(dot / norms / temperature)
        total += -math.log(math.exp(sims[i]) / sum(math.exp(s) for s in sims))
    return total / len(queries)


@pytest.fixture
def processor(dsclap_tokenizer) -> TurboProcessor:
    return TurboProcessor.from_config(TurboConfig.from_preset("tiny"), dsclap_tokenizer)


@pytest.fixture
def batch(processor, dsclap_waveforms) -> dict[str, torch.Tensor]:
    clips = dsclap_waveforms(8000, 5200, 6400, 3300)
    return dict(processor(audio=clips, text=TEXTS, sampling_rate=16_000, return_tensors="pt"))


def tiny_classifier(seed: int = 0, **overrides) -> TurboForSequenceClassification:
    torch.manual_seed(seed)
    overrides.setdefault("num_labels", 3)
    return TurboForSequenceClassification(TurboConfig.from_preset("tiny", **overrides))


class PassCounter:
    """Counts the forward passes a model makes through both encoders."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls = 0
        original = model._forward_pass

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        model._forward_pass = counted


# --- the loss --------------------------------------------------------------------------------------------------------


def test_turbo_loss_is_the_six_infonce_terms_by_hand() -> None:
    generator = torch.Generator().manual_seed(0)
    a1, t1, a2, t2 = (torch.randn(3, 4, generator=generator) for _ in range(4))
    temperature = 0.5
    out = turbo_loss(*(F.normalize(x, dim=-1) for x in (a1, t1, a2, t2)), scale=1 / temperature)
    expected = {
        "audio_in_modal_loss": reference_info_nce(a1, a2, temperature),
        "text_in_modal_loss": reference_info_nce(t1, t2, temperature),
        "cross_loss_11": reference_info_nce(a1, t1, temperature),
        "cross_loss_12": reference_info_nce(a1, t2, temperature),
        "cross_loss_21": reference_info_nce(a2, t1, temperature),
        "cross_loss_22": reference_info_nce(a2, t2, temperature),
    }
    for name, value in expected.items():
        assert getattr(out, name).item() == pytest.approx(value, rel=1e-5), name
    assert out.loss.item() == pytest.approx(sum(expected.values()), rel=1e-5)
    # The terms are one-directional (Eq. 2-3): swapping query and key views changes a term.
    assert reference_info_nce(a1, t1, temperature) != pytest.approx(reference_info_nce(t1, a1, temperature))


# --- the model -------------------------------------------------------------------------------------------------------


def test_config_writes_hidden_dropout_into_both_encoders() -> None:
    config = TurboConfig.from_preset("tiny", hidden_dropout=0.3)
    assert config.audio_config.hidden_dropout == 0.3
    assert config.text_config.hidden_dropout_prob == 0.3
    assert TurboForSequenceClassification(config).joint_dropout.p == 0.3
    untouched = TurboConfig.from_preset(
        "tiny", hidden_dropout=None, text_config={"hidden_dropout_prob": 0.05}
    )
    assert untouched.text_config.hidden_dropout_prob == 0.05


@pytest.mark.parametrize(
    ("field", "value"),
    [("objective", "simcse"), ("classification_weight", 1.5), ("temperature", 0.0), ("hidden_dropout", 1.0)],
)
def test_config_rejects_invalid_values(field: str, value) -> None:
    # huggingface_hub's strict-dataclass validation wraps the ValueError in its own error type.
    with pytest.raises(StrictDataclassClassValidationError, match=field):
        TurboConfig.from_preset("tiny", **{field: value})


def test_training_runs_two_passes_that_differ_and_the_loss_is_eq6(batch) -> None:
    model = tiny_classifier().train()
    captured = []
    original = model._forward_pass
    model._forward_pass = lambda *args: captured.append(original(*args)) or captured[-1]
    out = model(**batch, labels=LABELS)
    assert len(captured) == 2
    first, second = captured
    assert not torch.allclose(first.audio_hidden, second.audio_hidden)  # independent dropout masks
    assert not torch.allclose(first.text_hidden, second.text_hidden)
    # CE uses the first pass's logits; the total is Eq. 6 with lambda = 0.5.
    logits = model.classifier(torch.cat([first.audio_hidden, first.text_hidden], dim=-1))
    torch.testing.assert_close(out.logits, logits)
    torch.testing.assert_close(out.classification_loss, F.cross_entropy(logits, LABELS))
    parts = turbo_loss(
        first.audio_embeds, first.text_embeds, second.audio_embeds, second.text_embeds, 1 / 0.05
    )
    torch.testing.assert_close(out.contrastive_loss, parts.loss)
    torch.testing.assert_close(out.loss, 0.5 * out.classification_loss + 0.5 * parts.loss)
    out.loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "pooler" not in n)


def test_eval_is_one_deterministic_pass(batch) -> None:
    model = tiny_classifier().eval()
    counter = PassCounter(model)
    with torch.no_grad():
        first = model(**batch, labels=LABELS)
        second = model(**batch, labels=LABELS)
    assert counter.calls == 2  # one per call
    torch.testing.assert_close(first.logits, second.logits, atol=0, rtol=0)
    torch.testing.assert_close(first.loss, second.loss, atol=0, rtol=0)
    # Both views are the single pass, so in-modal positives are the embeddings themselves.
    assert first.audio_in_modal_loss is not None and first.contrastive_loss > 0


@pytest.mark.parametrize("objective", ["vanilla", "cross"])
def test_baselines_never_run_a_second_pass(batch, objective: str) -> None:
    model = tiny_classifier(objective=objective).train()
    counter = PassCounter(model)
    out = model(**batch, labels=LABELS)
    assert counter.calls == 1
    if objective == "vanilla":
        assert out.contrastive_loss is None
        torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, LABELS))
    else:
        expected = 0.5 * out.classification_loss + 0.5 * out.cross_modal_loss
        torch.testing.assert_close(out.loss, expected)
        assert out.audio_in_modal_loss is None


def test_classification_weight_one_is_plain_cross_entropy(batch) -> None:
    model = tiny_classifier(classification_weight=1.0).train()
    counter = PassCounter(model)
    out = model(**batch, labels=LABELS)
    assert counter.calls == 1
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, LABELS))


def test_regression_uses_mse_like_transformers(batch) -> None:
    model = tiny_classifier(num_labels=1, objective="vanilla").train()
    targets = torch.tensor([0.5, -1.0, 2.0, 0.0])
    out = model(**batch, labels=targets)
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits.squeeze(-1), targets))


def test_turbo_model_embeddings_and_self_supervised_loss(batch) -> None:
    torch.manual_seed(0)
    model = TurboModel(TurboConfig.from_preset("tiny")).eval()
    with torch.no_grad():
        out = model(**batch)
    assert out.loss is None
    torch.testing.assert_close(out.audio_embeds.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(out.logits_per_audio, out.audio_embeds @ out.text_embeds.T / 0.05)
    model.train()
    counter = PassCounter(model)
    trained = model(**batch, return_loss=True)
    assert counter.calls == 2 and trained.loss > 0
    with pytest.raises(ValueError, match="vanilla"):
        TurboModel(TurboConfig.from_preset("tiny", objective="vanilla"))(**batch, return_loss=True)


def test_unpaired_batches_are_rejected(batch) -> None:
    model = tiny_classifier()
    text_keys = ("input_ids", "attention_mask", "token_type_ids")
    unpaired = {key: value[:3] if key in text_keys else value for key, value in batch.items()}
    with pytest.raises(ValueError, match="one transcript per clip"):
        model(**unpaired, labels=LABELS)


# --- save / load / Auto / DSCLAP encoders ----------------------------------------------------------------------------


def test_objective_and_processor_survive_save_and_load(processor, tmp_path: Path) -> None:
    """(The weights' round trip is in test_modeling_common.py.)"""
    tiny_classifier(objective="cross").save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).objective == "cross"
    assert type(AutoProcessor.from_pretrained(tmp_path)) is TurboProcessor


def test_trust_remote_code_loads_where_audiolang_is_not_importable(
    processor, tmp_path: Path, load_without_audiolang
) -> None:
    folder = tmp_path / "turbo"
    torch.manual_seed(0)
    model = TurboModel(TurboConfig.from_preset("tiny")).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    report = load_without_audiolang(folder, tmp_path)
    assert all(module.startswith("transformers_modules.") for module in report["classes"]), report["classes"]
    assert report["loaded"] == ["audiolang"]
    inputs = processor(
        audio=[torch.linspace(-1, 1, 6000).sin().numpy()],
        text=["navigate home"],
        sampling_rate=16_000,
        return_tensors="pt",
    )
    with torch.no_grad():
        assert report["logit"] == pytest.approx(model(**inputs).logits_per_audio.item(), abs=1e-4)


def test_encoders_load_from_a_dsclap_checkpoint(dsclap_checkpoint: Path, batch) -> None:
    dsclap = DsclapModel.from_pretrained(dsclap_checkpoint)
    model = TurboForSequenceClassification.from_pretrained(
        dsclap_checkpoint, num_labels=3, objective="cross", freeze_text_encoder=True
    )
    assert type(model.config) is TurboConfig and model.config.objective == "cross"
    state = model.state_dict()
    for name, value in dsclap.state_dict().items():
        if name.startswith(("audio_model.", "text_model.")):
            torch.testing.assert_close(state[name], value, atol=0, rtol=0, msg=name)
    # Turbo's dropout reaches the DSCLAP encoders (their checkpoint had none).
    assert model.config.audio_config.hidden_dropout == 0.2
    assert model.config.text_config.hidden_dropout_prob == 0.2
    assert all(not p.requires_grad for p in model.text_model.parameters())
    out = model.train()(**batch, labels=LABELS)
    out.loss.backward()
    assert model.audio_fc.weight.grad is not None
    assert (
        TurboForSequenceClassification.from_dsclap_pretrained(dsclap_checkpoint, num_labels=2).num_labels == 2
    )


@pytest.mark.parametrize("source", ["dsclap", "turbo"])
def test_layer_weights_switched_on_at_loading_train_with_the_audio_tower_frozen(
    source: str, dsclap_checkpoint: Path, batch, tmp_path: Path
) -> None:
    """`audio_config={"use_weighted_layer_sum": True}` at `from_pretrained` (a DSCLAP or a Turbo checkpoint saved
    without layer weights) adds equal layer weights around the checkpoint's encoders; with `freeze_audio_encoder`
    they are the one trainable part of the audio side, and the classification loss reaches them."""
    folder = dsclap_checkpoint
    if source == "turbo":
        folder = tmp_path / "turbo"
        TurboForSequenceClassification.from_pretrained(dsclap_checkpoint, num_labels=3).save_pretrained(
            folder
        )
    model = TurboForSequenceClassification.from_pretrained(
        folder, num_labels=3, audio_config={"use_weighted_layer_sum": True}, freeze_audio_encoder=True
    )
    assert model.config.audio_config.use_weighted_layer_sum and model.config.freeze_audio_encoder
    torch.testing.assert_close(model.audio_layer_weights.detach(), torch.full((3,), 1 / 3))
    dsclap_state, state = DsclapModel.from_pretrained(dsclap_checkpoint).state_dict(), model.state_dict()
    for name, value in dsclap_state.items():
        if name.startswith("audio_model."):
            torch.testing.assert_close(state[name], value, atol=0, rtol=0, msg=name)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert "audio_layer_weights" in trainable and not any(n.startswith("audio_model.") for n in trainable)
    model.train()(**batch, labels=LABELS).loss.backward()
    assert model.audio_layer_weights.grad.abs().sum() > 0
