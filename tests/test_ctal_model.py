"""CtalConfig / CtalModel / CtalForPreTraining / CtalForSequenceClassification / CtalForXVector: the paper's
architecture, losses and fusion, and the transformers model contract, on tiny configs."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from model_tester import FRAME_VOCAB, frame_batch
from model_tester import ctal_config as tiny_config
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoProcessor,
)

from audiolang import (
    CTAL_PRESETS,
    AttentionPooling,
    CtalConfig,
    CtalForPreTraining,
    CtalForSequenceClassification,
    CtalForXVector,
    CtalModel,
    CtalModelOutput,
    CtalProcessor,
    masked_max_pool,
    train_ctal_tokenizer,
)
from audiolang.metrics import equal_error_rate

VOCAB = FRAME_VOCAB
TEXT_LENGTHS = (7, 4, 6)
FRAME_COUNTS = (50, 23, 37)


def build(model_class, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return model_class(tiny_config(**overrides))


def pretraining_labels(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    labels = torch.full_like(batch["input_ids"], -100)
    labels[:, 1] = batch["input_ids"][:, 1]
    labels[0, 3] = batch["input_ids"][0, 3]
    audio_labels_mask = torch.zeros_like(batch["audio_attention_mask"], dtype=torch.bool)
    audio_labels_mask[:, 2:12] = True
    return {
        "labels": labels,
        "audio_labels": batch["input_features"].clone(),
        "audio_labels_mask": audio_labels_mask,
    }


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    return frame_batch(TEXT_LENGTHS, FRAME_COUNTS)


@pytest.fixture(scope="module")
def pretraining_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ctal_pretraining")
    build(CtalForPreTraining).save_pretrained(folder)
    return folder


# --- configuration --------------------------------------------------------------------------------------------------


def test_presets_have_the_papers_shapes() -> None:
    base, large = CtalConfig.from_preset("base"), CtalConfig.from_preset("large")
    assert (base.hidden_size, base.num_attention_heads, base.num_hidden_layers) == (768, 12, 3)
    assert (large.hidden_size, large.num_attention_heads, large.num_hidden_layers) == (768, 12, 6)
    assert base.audio_feature_size == 160 and base.intermediate_size == 3072
    assert (base.mlm_weight, base.mcam_weight) == (1.0, 1.0)
    assert CtalConfig().to_dict() == base.to_dict()
    assert set(CTAL_PRESETS) == {"base", "large", "small", "tiny"}
    small = CtalConfig.from_preset("small", vocab_size=8000)
    assert (small.hidden_size, small.num_hidden_layers, small.vocab_size) == (256, 3, 8000)
    with pytest.raises(ValueError, match="Unknown CTAL preset"):
        CtalConfig.from_preset("huge")


def test_config_round_trips_through_json(tmp_path: Path) -> None:
    config = tiny_config(orthogonal_weight=0.3, num_labels=5)
    config.save_pretrained(tmp_path)
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert type(reloaded) is CtalConfig
    assert (reloaded.orthogonal_weight, reloaded.num_labels, reloaded.vocab_size) == (0.3, 5, VOCAB)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"hidden_size": 30, "num_attention_heads": 4}, "divisible"),
        ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob"),
        ({"orthogonal_weight": -1.0}, "orthogonal_weight"),
        ({"mask_token_id": VOCAB}, "mask_token_id"),
        ({"num_hidden_layers": 0}, "num_hidden_layers"),
    ],
)
def test_config_rejects_invalid_values(overrides: dict, match: str) -> None:
    with pytest.raises(Exception, match=match):
        tiny_config(**overrides)


# --- the backbone ---------------------------------------------------------------------------------------------------


def test_forward_returns_both_streams_and_per_layer_outputs_on_request(batch) -> None:
    model = build(CtalModel).eval()
    with torch.no_grad():
        out = model(**batch, token_type_ids=torch.zeros_like(batch["input_ids"]))
        full = model(**batch, output_hidden_states=True, output_attentions=True)
    assert isinstance(out, CtalModelOutput)
    assert out.text_last_hidden_state.shape == (3, 7, 32)
    assert out.audio_last_hidden_state.shape == (3, 50, 32)
    assert out.text_hidden_states is None and out.cross_attentions is None
    assert len(full.text_hidden_states) == len(full.audio_hidden_states) == 3  # embeddings + N = 2 layers
    torch.testing.assert_close(full.audio_hidden_states[-1], full.audio_last_hidden_state)
    assert full.text_attentions[0].shape == (3, 2, 7, 7)
    assert full.audio_attentions[0].shape == (3, 2, 50, 50)
    assert full.cross_attentions[0].shape == (3, 2, 50, 7)
    # Padding keys get no attention.
    assert full.cross_attentions[0][1, :, :, 4:].abs().max() == 0
    assert full.audio_attentions[1][1, :, :, 23:].abs().max() == 0


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_audio_self_attention_is_bidirectional(batch, implementation: str) -> None:
    """A late frame changes an early frame's output: no future mask (the paper removes the decoder's)."""
    model = build(CtalModel, attn_implementation=implementation).eval()
    assert model.config._attn_implementation == implementation
    changed = {key: value.clone() for key, value in batch.items()}
    changed["input_features"][0, 49] += 3.0  # the last real frame of row 0
    with torch.no_grad():
        before, after = model(**batch), model(**changed)
    assert (after.audio_last_hidden_state[0, 0] - before.audio_last_hidden_state[0, 0]).abs().max() > 1e-3
    torch.testing.assert_close(after.audio_last_hidden_state[1:], before.audio_last_hidden_state[1:])


def test_text_reaches_the_audio_stream_but_audio_does_not_reach_the_text(batch) -> None:
    model = build(CtalModel).eval()
    other_text = {key: value.clone() for key, value in batch.items()}
    other_text["input_ids"][0, 2] = (batch["input_ids"][0, 2] + 1 - 5) % (VOCAB - 5) + 5
    other_audio = {key: value.clone() for key, value in batch.items()}
    other_audio["input_features"][0, :10] += 1.0
    with torch.no_grad():
        out, text_changed, audio_changed = model(**batch), model(**other_text), model(**other_audio)
    assert (text_changed.audio_last_hidden_state[0] - out.audio_last_hidden_state[0]).abs().max() > 1e-3
    # MLM sees text only (Sec. 3.2.1): the text stream does not depend on the audio.
    torch.testing.assert_close(
        audio_changed.text_last_hidden_state, out.text_last_hidden_state, atol=0, rtol=0
    )


def test_every_audio_layer_attends_to_the_final_text_states(batch) -> None:
    model = build(CtalModel).eval()
    references = []
    for layer in model.audio_layers:
        layer.cross_attention.register_forward_pre_hook(
            lambda module, args, kwargs: references.append(kwargs["key_value_states"]), with_kwargs=True
        )
    with torch.no_grad():
        out = model(**batch)
    assert len(references) == 2
    for states in references:
        torch.testing.assert_close(states, out.text_last_hidden_state, atol=0, rtol=0)


def test_invalid_inputs_name_the_field(batch) -> None:
    model = build(CtalModel).eval()
    with pytest.raises(ValueError, match="input_features"):
        model(input_ids=batch["input_ids"])
    with pytest.raises(ValueError, match="input_ids"):
        model(input_features=batch["input_features"])
    with pytest.raises(ValueError, match="one transcript per clip"):
        model(input_ids=batch["input_ids"][:2], input_features=batch["input_features"])
    with pytest.raises(ValueError, match="160"):
        model(input_ids=batch["input_ids"], input_features=batch["input_features"][..., :80])
    with pytest.raises(ValueError, match="max_audio_frames"):
        model(input_ids=batch["input_ids"], input_features=torch.zeros(3, 129, 160))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(input_ids=torch.zeros(3, 33, dtype=torch.long), input_features=batch["input_features"])


# --- pre-training ---------------------------------------------------------------------------------------------------


def test_pretraining_losses_count_only_masked_tokens_and_frames(batch) -> None:
    model = build(CtalForPreTraining, mlm_weight=0.7, mcam_weight=2.0).eval()
    labels = pretraining_labels(batch)
    with torch.no_grad():
        out = model(**batch, **labels)
    selected = labels["labels"] != -100
    torch.testing.assert_close(
        out.mlm_loss, F.cross_entropy(out.prediction_logits[selected], labels["labels"][selected])
    )
    # Padding frames (row 1 has 23 real frames) never count, even where the mask says so.
    frames = labels["audio_labels_mask"] & batch["audio_attention_mask"].bool()
    expected = (out.audio_predictions - labels["audio_labels"]).abs()[frames].mean()
    torch.testing.assert_close(out.mcam_loss, expected)
    torch.testing.assert_close(out.loss, 0.7 * out.mlm_loss + 2.0 * out.mcam_loss)

    # Targets outside the masked frames do not matter.
    altered = dict(labels, audio_labels=labels["audio_labels"].clone())
    altered["audio_labels"][~labels["audio_labels_mask"]] += 10.0
    altered["audio_labels_mask"] = labels["audio_labels_mask"].clone()
    altered["audio_labels_mask"][1, 30:40] = True  # padding of row 1
    altered["audio_labels"][1, 30:40] += 10.0
    with torch.no_grad():
        torch.testing.assert_close(model(**batch, **altered).mcam_loss, out.mcam_loss)


def test_pretraining_loss_parts_are_optional_and_never_nan(batch) -> None:
    model = build(CtalForPreTraining).eval()
    labels = pretraining_labels(batch)
    with torch.no_grad():
        assert model(**batch).loss is None
        only_mlm = model(**batch, labels=labels["labels"])
        assert only_mlm.mcam_loss is None and torch.equal(only_mlm.loss, only_mlm.mlm_loss)
        nothing_masked = model(**batch, labels=torch.full_like(batch["input_ids"], -100))
        assert nothing_masked.loss.item() == 0.0
    with pytest.raises(ValueError, match="audio_labels_mask"):
        model(**batch, audio_labels=labels["audio_labels"])


def test_mlm_decoder_is_tied_to_the_token_embeddings(pretraining_checkpoint: Path) -> None:
    model = CtalForPreTraining.from_pretrained(pretraining_checkpoint)
    assert model.lm_head.decoder.weight is model.ctal.get_input_embeddings().weight
    assert "lm_head.decoder.weight" not in load_file(str(pretraining_checkpoint / "model.safetensors"))
    model.resize_token_embeddings(VOCAB + 8)
    assert model.lm_head.decoder.weight is model.ctal.get_input_embeddings().weight
    assert model.lm_head.decoder.out_features == VOCAB + 8


# --- fusion heads ---------------------------------------------------------------------------------------------------


def test_fusion_and_orthogonal_term_match_a_hand_computation(batch) -> None:
    model = build(CtalForSequenceClassification, num_labels=4, orthogonal_weight=0.5).eval()
    labels = torch.tensor([0, 3, 1])
    with torch.no_grad():
        out = model(**batch, labels=labels)
        states = model.ctal(**batch)
    pooling = model.audio_attention_pooling
    fused, orthogonal = [], torch.zeros(())
    for row in range(3):
        text = states.text_last_hidden_state[row, : int(batch["attention_mask"][row].sum())]
        audio = states.audio_last_hidden_state[row, : int(batch["audio_attention_mask"][row].sum())]
        weights = torch.softmax(pooling.score(torch.tanh(pooling.projection(audio))).squeeze(-1), dim=0)
        audio_attention, audio_max = weights @ audio, audio.max(dim=0).values
        text_attention, text_max = text[0], text.max(dim=0).values
        fused.append(torch.cat([audio_attention + text_attention, audio_max + text_max]))
        cosine = F.cosine_similarity
        orthogonal = orthogonal + (
            cosine(audio_attention, text_attention, dim=0).abs() + cosine(audio_max, text_max, dim=0).abs()
        )
    torch.testing.assert_close(out.embeddings, torch.stack(fused), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.orthogonal_loss, orthogonal / 3, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.logits, model.classifier(out.embeddings))
    torch.testing.assert_close(out.classification_loss, F.cross_entropy(out.logits, labels))
    torch.testing.assert_close(out.loss, out.classification_loss + 0.5 * out.orthogonal_loss)
    assert model.config.problem_type == "single_label_classification"


def test_regression_is_trained_with_l1(batch) -> None:
    model = build(CtalForSequenceClassification, num_labels=1).train()
    scores = torch.tensor([-2.5, 0.0, 1.5])
    out = model(**batch, labels=scores)
    assert model.config.problem_type == "regression" and out.logits.shape == (3, 1)
    torch.testing.assert_close(out.classification_loss, F.l1_loss(out.logits.squeeze(-1), scores))
    torch.testing.assert_close(out.loss, out.classification_loss + out.orthogonal_loss)
    out.loss.backward()
    assert [name for name, param in model.named_parameters() if param.grad is None] == []


def test_multi_label_uses_binary_cross_entropy(batch) -> None:
    model = build(CtalForSequenceClassification, num_labels=3, orthogonal_weight=0.0).eval()
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with torch.no_grad():
        out = model(**batch, labels=labels)
    assert model.config.problem_type == "multi_label_classification"
    torch.testing.assert_close(out.loss, F.binary_cross_entropy_with_logits(out.logits, labels))


def test_pooling_ignores_padding() -> None:
    hidden = torch.tensor([[[-5.0, 1.0], [-4.0, 2.0], [100.0, 100.0]], [[7.0, 7.0], [8.0, 8.0], [9.0, 9.0]]])
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    torch.testing.assert_close(masked_max_pool(hidden, mask), torch.tensor([[-4.0, 2.0], [0.0, 0.0]]))
    torch.testing.assert_close(masked_max_pool(hidden), hidden.amax(dim=1))
    with pytest.raises(ValueError, match="mask"):
        masked_max_pool(hidden, torch.ones(2, 5))
    pooling = AttentionPooling(2)
    pooled = pooling(hidden, mask)
    torch.testing.assert_close(pooled[1], torch.zeros(2))
    torch.testing.assert_close(pooled[0:1], pooling(hidden[:1, :2]))


def test_speaker_embeddings_separate_speakers_after_a_tiny_run() -> None:
    """Train the x-vector head on synthetic speakers (speaker-specific spectral offsets under frame noise, random
    transcripts); new utterances of those speakers are then verified by the cosine of their embeddings, which the
    untrained model cannot do."""
    generator = torch.Generator().manual_seed(0)
    speakers = 4
    offsets = 0.5 * torch.randn(speakers, 160, generator=generator)

    def utterances(count: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        who = torch.arange(count) % speakers
        data = frame_batch(
            text_lengths=tuple(torch.randint(3, 8, (count,), generator=generator).tolist()),
            frame_counts=tuple(torch.randint(20, 40, (count,), generator=generator).tolist()),
            seed=int(torch.randint(1000, (1,), generator=generator)),
        )
        data["input_features"] = 2 * data["input_features"] + offsets[who][:, None, :]
        data["input_features"] *= data["audio_attention_mask"][..., None]
        return data, who

    trials, trial_speakers = utterances(24)

    def eer(model: CtalForXVector) -> float:
        with torch.no_grad():
            out = model.eval()(**trials)
        assert out.embeddings.shape == (24, 64) and out.logits.shape == (24, speakers)
        embeddings = F.normalize(out.embeddings, dim=-1)
        first, second = torch.triu_indices(24, 24, offset=1)
        scores = (embeddings[first] * embeddings[second]).sum(-1)
        same = (trial_speakers[first] == trial_speakers[second]).long()
        return equal_error_rate(scores.numpy(), same.numpy()).eer

    model = build(CtalForXVector, num_labels=speakers)
    untrained = eer(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(30):
        data, who = utterances(16)
        out = model(**data, labels=who)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(out.classification_loss.item())
    assert sum(losses[-5:]) < 0.2 * sum(losses[:5])
    assert untrained > 0.3 and eer(model) < 0.05


# --- saving and loading ---------------------------------------------------------------------------------------------


def test_missing_weights_are_initialised(pretraining_checkpoint: Path, tmp_path: Path) -> None:
    for name in os.listdir(pretraining_checkpoint):
        (tmp_path / name).write_bytes((pretraining_checkpoint / name).read_bytes())
    weights = load_file(str(tmp_path / "model.safetensors"))
    # Fill every tensor with a marker value, then drop a few: the dropped ones must come back initialised, not as
    # leftovers of whatever memory the model was built in.
    dropped = [
        "ctal.audio_embeddings.inputs.weight",
        "ctal.audio_embeddings.inputs.bias",
        "ctal.audio_layers.1.cross_attention_norm.LayerNorm.weight",
        "ctal.audio_layers.1.cross_attention.key.bias",
        "acoustic_head.decoder.weight",
        "lm_head.decoder.bias",
    ]
    kept = {name: torch.full_like(value, 7.0) for name, value in weights.items() if name not in dropped}
    save_file(kept, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    model, info = CtalForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["missing_keys"]) == sorted(dropped)
    state = model.state_dict()
    for name in dropped:
        value = state[name]
        if name.endswith("LayerNorm.weight"):
            torch.testing.assert_close(value, torch.ones_like(value))
        elif name.endswith("bias"):
            torch.testing.assert_close(value, torch.zeros_like(value))
        else:
            assert value.abs().max() < 0.2 and 0.01 < value.std() < 0.03, name
    assert (state["ctal.text_layers.0.attention.query.weight"] == 7.0).all()


def test_pretrained_encoder_loads_into_the_heads(pretraining_checkpoint: Path, batch) -> None:
    pretrained = CtalForPreTraining.from_pretrained(pretraining_checkpoint)
    for head_class in (CtalForSequenceClassification, CtalForXVector):
        model, info = head_class.from_pretrained(
            pretraining_checkpoint, num_labels=3, output_loading_info=True
        )
        assert not info["unexpected_keys"]
        assert sorted(info["missing_keys"]) == sorted(
            [
                "audio_attention_pooling.projection.weight",
                "audio_attention_pooling.projection.bias",
                "audio_attention_pooling.score.weight",
                "classifier.weight",
                "classifier.bias",
            ]
        )
        for name, value in pretrained.ctal.state_dict().items():
            torch.testing.assert_close(model.ctal.state_dict()[name], value, atol=0, rtol=0)
    base = AutoModel.from_pretrained(pretraining_checkpoint).eval()
    assert type(base) is CtalModel
    with torch.no_grad():
        torch.testing.assert_close(
            base(**batch).audio_last_hidden_state, pretrained.eval().ctal(**batch).audio_last_hidden_state
        )


TRUST_REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    from transformers import AutoConfig, AutoModelForAudioXVector, AutoModelForPreTraining, AutoProcessor
    pretraining, speaker = sys.argv[1], sys.argv[2]
    config = AutoConfig.from_pretrained(pretraining, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(pretraining, trust_remote_code=True)
    model = AutoModelForPreTraining.from_pretrained(pretraining, trust_remote_code=True).eval()
    xvector = AutoModelForAudioXVector.from_pretrained(speaker, trust_remote_code=True).eval()
    clip = torch.linspace(-1, 1, 6000).sin().numpy()
    inputs = processor(audio=[clip], text=["navigate home"], sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).prediction_logits
        embeddings = xvector(**inputs).embeddings
    print(json.dumps({
        "classes": [type(config).__module__, type(processor).__module__, type(model).__module__,
                    type(xvector).__module__],
        "loaded": sorted(name for name in sys.modules if name.startswith("audiolang")),
        "logits": logits.sum().item(),
        "embeddings": embeddings.sum().item(),
    }))
    """
)


def test_trust_remote_code_loads_where_audiolang_is_not_importable(
    tmp_path: Path, run_without_audiolang
) -> None:
    """A pre-training and a speaker checkpoint, each saved with its processor, load and run through the Auto classes
    where audiolang cannot be imported."""
    tokenizer = train_ctal_tokenizer(
        ["navigate home", "open the window", "play some music"] * 5, vocab_size=300
    )
    config = tiny_config(vocab_size=len(tokenizer))
    processor = CtalProcessor.from_config(config, tokenizer)
    models = {
        "pretraining": CtalForPreTraining(config),
        "speaker": CtalForXVector(tiny_config(vocab_size=len(tokenizer), num_labels=4)),
    }
    for name, model in models.items():
        model.save_pretrained(tmp_path / name)
        processor.save_pretrained(tmp_path / name)
    for module in ("configuration_ctal.py", "modeling_ctal.py", "layers.py", "pooling.py", "losses.py"):
        assert (tmp_path / "pretraining" / module).exists(), module
    report = run_without_audiolang(
        TRUST_REMOTE_CODE_SCRIPT, tmp_path / "pretraining", tmp_path / "speaker", workdir=tmp_path
    )
    assert all(module.startswith("transformers_modules.") for module in report["classes"]), report["classes"]
    assert report["loaded"] == ["audiolang"]  # only the blocking `None` entry: nothing came from the package

    local_processor = AutoProcessor.from_pretrained(tmp_path / "pretraining")
    assert type(local_processor) is CtalProcessor
    clip = torch.linspace(-1, 1, 6000).sin().numpy()
    inputs = local_processor(audio=[clip], text=["navigate home"], sampling_rate=16_000, return_tensors="pt")
    with torch.no_grad():
        logits = models["pretraining"].eval()(**inputs).prediction_logits
        embeddings = models["speaker"].eval()(**inputs).embeddings
    assert report["logits"] == pytest.approx(logits.sum().item(), abs=1e-3)
    assert report["embeddings"] == pytest.approx(embeddings.sum().item(), abs=1e-4)
