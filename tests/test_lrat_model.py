"""LratConfig / LratModel / LratForPreTraining / LratForSequenceClassification / LratForXVector: the paper's dual
cross-modal Transformer, its losses and fine-tuning heads, and the transformers model contract, on tiny configs."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from model_tester import FRAME_VOCAB, frame_batch
from model_tester import lrat_config as tiny_config
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    AutoModelForAudioXVector,
    AutoModelForSequenceClassification,
    AutoProcessor,
)

from audiolang import (
    LRAT_PRESETS,
    LratConfig,
    LratForPreTraining,
    LratForSequenceClassification,
    LratForXVector,
    LratModel,
    LratModelOutput,
    LratProcessor,
    masked_mean_pool,
    train_ctal_tokenizer,
)

VOCAB = FRAME_VOCAB
TEXT_LENGTHS = (7, 4, 6)
FRAME_COUNTS = (50, 23, 37)
MASK, PAD = 4, 1


def build(model_class, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return model_class(tiny_config(**overrides))


def changed(
    batch: dict[str, torch.Tensor], key: str, index: tuple, delta: float = 3.0
) -> dict[str, torch.Tensor]:
    """A copy of the batch with one token replaced by another id, or one frame shifted."""
    out = {name: value.clone() for name, value in batch.items()}
    if key == "input_ids":
        out[key][index] = (batch[key][index] - 5 + 1) % (VOCAB - 5) + 5
    else:
        out[key][index] += delta
    return out


def denoising_targets(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Targets for every loss part: a few labelled tokens and frames, for the cross-modal and the IDAE passes."""
    labels = torch.full_like(batch["input_ids"], -100)
    labels[:, 1] = batch["input_ids"][:, 1]
    labels[0, 3] = batch["input_ids"][0, 3]
    frames = torch.zeros_like(batch["audio_attention_mask"], dtype=torch.bool)
    frames[:, 2:30] = True  # beyond row 1's 23 real frames too
    return {
        "labels": labels,
        "audio_labels": batch["input_features"].clone(),
        "audio_labels_mask": frames,
        "idae_input_ids": batch["input_ids"],
        "idae_attention_mask": batch["attention_mask"],
        "idae_labels": labels.flip(0),
        "idae_input_features": batch["input_features"],
        "idae_audio_attention_mask": batch["audio_attention_mask"],
        "idae_audio_labels": batch["input_features"].flip(-1),
        "idae_audio_labels_mask": frames,
    }


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    return frame_batch(TEXT_LENGTHS, FRAME_COUNTS)


@pytest.fixture(scope="module")
def pretraining_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lrat_pretraining")
    build(LratForPreTraining).save_pretrained(folder)
    return folder


# --- configuration --------------------------------------------------------------------------------------------------


def test_presets_have_the_papers_shapes() -> None:
    paper = LratConfig.from_preset("paper")
    assert (paper.hidden_size, paper.num_attention_heads, paper.num_hidden_layers) == (768, 12, 3)
    assert (paper.text_translation_length, paper.audio_translation_length) == (256, 1000)
    assert (paper.embedding_size, paper.audio_feature_size) == (128, 160)
    rates = (paper.idae_mask_probability, paper.cdae_mask_probability, paper.cdae_mask_replace_probability)
    assert rates == (0.15, 0.3, 0.6) and paper.paired_replace_probability == 0.3
    assert LratConfig().to_dict() == paper.to_dict()
    assert set(LRAT_PRESETS) == {"paper", "small", "tiny"}
    assert LratConfig.from_preset("small", vocab_size=8000).vocab_size == 8000
    with pytest.raises(ValueError, match="Unknown lrat preset"):
        LratConfig.from_preset("huge")


def test_paper_model_has_about_110m_parameters() -> None:
    """Four 3-layer encoders of width 768 (two with cross-attention) and the heads: the paper's "110M" with a RoBERTa-
    sized vocabulary (50265); the default 30K BPE vocabulary gives 3M fewer."""
    with torch.device("meta"):
        model = LratForPreTraining(LratConfig.from_preset("paper", vocab_size=50_265))
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(110, abs=2)


def test_config_round_trips_through_json(tmp_path: Path) -> None:
    config = tiny_config(cdae_mask_probability=0.25, num_labels=5)
    config.save_pretrained(tmp_path)
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert type(reloaded) is LratConfig
    assert (reloaded.cdae_mask_probability, reloaded.num_labels, reloaded.vocab_size) == (0.25, 5, VOCAB)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"hidden_size": 30, "num_attention_heads": 4}, "divisible"),
        ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob"),
        ({"cdae_mask_probability": 1.5}, "cdae_mask_probability"),
        ({"idae_weight": -1.0}, "idae_weight"),
        ({"mask_token_id": VOCAB}, "mask_token_id"),
        ({"text_translation_length": 33}, "text_translation_length"),
        ({"audio_translation_length": 0}, "audio_translation_length"),
    ],
)
def test_config_rejects_invalid_values(overrides: dict, match: str) -> None:
    with pytest.raises(Exception, match=match):
        tiny_config(**overrides)


# --- the backbone ---------------------------------------------------------------------------------------------------


def test_forward_returns_four_encoders_and_per_layer_outputs_on_request(batch) -> None:
    model = build(LratModel).eval()
    with torch.no_grad():
        out = model(**batch, token_type_ids=torch.zeros_like(batch["input_ids"]))
        full = model(**batch, output_hidden_states=True, output_attentions=True)
    assert isinstance(out, LratModelOutput)
    assert out.text_last_hidden_state.shape == out.text_unimodal_last_hidden_state.shape == (3, 7, 32)
    assert out.audio_last_hidden_state.shape == out.audio_unimodal_last_hidden_state.shape == (3, 50, 32)
    assert out.text_hidden_states is None and out.text_cross_attentions is None
    for name in ("text", "audio", "text_unimodal", "audio_unimodal"):
        states = getattr(full, f"{name}_hidden_states")
        assert len(states) == 3  # embeddings + N = 2 layers
        torch.testing.assert_close(states[-1], getattr(full, f"{name}_last_hidden_state"))
    assert full.text_attentions[0].shape == (3, 2, 7, 7)
    assert full.audio_unimodal_attentions[0].shape == (3, 2, 50, 50)
    assert full.text_cross_attentions[0].shape == (3, 2, 7, 50)
    assert full.audio_cross_attentions[0].shape == (3, 2, 50, 7)
    # Padding keys get no attention.
    assert full.audio_cross_attentions[0][1, :, :, 4:].abs().max() == 0
    assert full.text_cross_attentions[1][1, :, :, 23:].abs().max() == 0
    # The cross-modal encoders read the input embeddings, not the unimodal outputs.
    torch.testing.assert_close(full.text_hidden_states[0], full.text_unimodal_hidden_states[0])


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_every_encoder_is_bidirectional(batch, implementation: str) -> None:
    """A late position changes an early output in all four encoders: no causal mask (the authors' "decoders" override
    it to be non-causal)."""
    model = build(LratModel, attn_implementation=implementation).eval()
    assert model.config._attn_implementation == implementation
    with torch.no_grad():
        before = model(**batch)
        late_token = model(**changed(batch, "input_ids", (0, 5)))
        late_frame = model(**changed(batch, "input_features", (0, 49)))
    for after, names in (
        (late_token, ("text_unimodal_last_hidden_state", "text_last_hidden_state")),
        (late_frame, ("audio_unimodal_last_hidden_state", "audio_last_hidden_state")),
    ):
        for name in names:
            # A causal mask would leave position 0 exactly unchanged.
            assert (after[name][0, 0] - before[name][0, 0]).abs().max() > 1e-5, name
            torch.testing.assert_close(after[name][1:], before[name][1:])


def test_cross_encoders_see_the_other_modality_and_unimodal_encoders_do_not(batch) -> None:
    model = build(LratModel).eval()
    with torch.no_grad():
        out = model(**batch)
        other_text = model(**changed(batch, "input_ids", (0, 2)))
        other_audio = model(**changed(batch, "input_features", (0, slice(0, 10)), 1.0))
    # Unwired cross-modal encoders would leave their outputs exactly unchanged.
    assert (other_audio.text_last_hidden_state[0] - out.text_last_hidden_state[0]).abs().max() > 1e-5
    assert (other_text.audio_last_hidden_state[0] - out.audio_last_hidden_state[0]).abs().max() > 1e-5
    exact = {"atol": 0, "rtol": 0}
    torch.testing.assert_close(
        other_audio.text_unimodal_last_hidden_state, out.text_unimodal_last_hidden_state, **exact
    )
    torch.testing.assert_close(
        other_text.audio_unimodal_last_hidden_state, out.audio_unimodal_last_hidden_state, **exact
    )


def test_every_cross_layer_attends_to_the_final_unimodal_states(batch) -> None:
    model = build(LratModel).eval()
    references = {"text": [], "audio": []}
    for name in references:
        for layer in getattr(model, f"{name}_cross_encoder"):
            layer.cross_attention.register_forward_pre_hook(
                lambda module, args, kwargs, name=name: references[name].append(kwargs["key_value_states"]),
                with_kwargs=True,
            )
    with torch.no_grad():
        out = model(**batch)
    assert len(references["text"]) == len(references["audio"]) == 2
    for states in references["text"]:
        torch.testing.assert_close(states, out.audio_unimodal_last_hidden_state, atol=0, rtol=0)
    for states in references["audio"]:
        torch.testing.assert_close(states, out.text_unimodal_last_hidden_state, atol=0, rtol=0)


def test_decoder_inputs_choose_the_translation_direction(batch) -> None:
    """A clip with text decoder inputs runs only the audio -> text translator; token vectors and ids mix by mask."""
    model = build(LratModel).eval()
    decoder_ids = torch.full((3, 10), MASK)
    with torch.no_grad():
        audio_to_text = model(
            input_features=batch["input_features"],
            audio_attention_mask=batch["audio_attention_mask"],
            decoder_input_ids=decoder_ids,
        )
        as_vectors = model(
            input_features=batch["input_features"],
            audio_attention_mask=batch["audio_attention_mask"],
            decoder_inputs_embeds=model.word_embeddings(decoder_ids),
        )
        pair = model(**batch)
        vectors = torch.randn(3, 7, 16)
        replaced = torch.zeros(3, 7, dtype=torch.bool)
        replaced[:, 1] = True
        mixed = model(**batch, inputs_embeds=vectors, inputs_embeds_mask=replaced)
        expected = model.word_embeddings(batch["input_ids"])
        expected[:, 1] = vectors[:, 1]
        by_hand = model(**{k: v for k, v in batch.items() if k != "input_ids"}, inputs_embeds=expected)
    assert audio_to_text.text_last_hidden_state.shape == (3, 10, 32)
    assert (
        audio_to_text.audio_last_hidden_state is None
        and audio_to_text.text_unimodal_last_hidden_state is None
    )
    torch.testing.assert_close(as_vectors.text_last_hidden_state, audio_to_text.text_last_hidden_state)
    torch.testing.assert_close(
        pair.audio_unimodal_last_hidden_state, audio_to_text.audio_unimodal_last_hidden_state
    )
    for name in ("text_unimodal_last_hidden_state", "text_last_hidden_state", "audio_last_hidden_state"):
        torch.testing.assert_close(mixed[name], by_hand[name])
        assert (mixed[name] - pair[name]).abs().max() > 1e-3


def test_invalid_inputs_name_the_field(batch) -> None:
    model = build(LratModel).eval()
    with pytest.raises(ValueError, match="text source"):
        model(attention_mask=batch["attention_mask"])
    with pytest.raises(ValueError, match="need `input_features`"):
        model(input_ids=batch["input_ids"], decoder_input_ids=batch["input_ids"])
    with pytest.raises(ValueError, match="needs `input_ids` or `inputs_embeds`"):
        model(input_features=batch["input_features"], decoder_input_features=batch["input_features"])
    with pytest.raises(ValueError, match="Batch sizes differ"):
        model(input_ids=batch["input_ids"][:2], input_features=batch["input_features"])
    with pytest.raises(ValueError, match="160"):
        model(input_ids=batch["input_ids"], input_features=batch["input_features"][..., :80])
    with pytest.raises(ValueError, match="embedding_size=16"):
        model(inputs_embeds=torch.zeros(3, 7, 32), input_features=batch["input_features"])
    with pytest.raises(ValueError, match="inputs_embeds_mask"):
        model(**batch, inputs_embeds=torch.zeros(3, 7, 16))
    with pytest.raises(ValueError, match="max_audio_frames"):
        model(input_ids=batch["input_ids"], input_features=torch.zeros(3, 201, 160))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(input_ids=torch.zeros(3, 33, dtype=torch.long), input_features=batch["input_features"])


# --- pre-training losses --------------------------------------------------------------------------------------------


def test_every_loss_part_matches_a_hand_computation(batch) -> None:
    """IDAE through the unimodal encoders alone, L_W / L_A through the cross-modal ones; only labelled tokens and
    labelled real frames count; the total is the configured weighted sum."""
    model = build(LratForPreTraining, idae_weight=0.5, cross_modal_weight=2.0, audio_loss_weight=3.0).eval()
    targets = denoising_targets(batch)
    with torch.no_grad():
        out = model(**batch, **targets)
        text = model.lrat.encode_text(batch["input_ids"], batch["attention_mask"]).last_hidden_state
        audio = model.lrat.encode_audio(
            batch["input_features"], batch["audio_attention_mask"]
        ).last_hidden_state
        idae_logits, idae_frames = model.text_head(text), model.audio_head(audio)
    torch.testing.assert_close(out.idae_prediction_logits, idae_logits)
    torch.testing.assert_close(out.idae_audio_predictions, idae_frames)

    def cross_entropy(logits, labels):
        selected = labels != -100
        return -logits.log_softmax(-1)[selected].gather(-1, labels[selected][:, None]).mean()

    # Row 1 has 23 real frames: frames 23-29 are labelled but padding, so they do not count.
    frames = targets["audio_labels_mask"] & batch["audio_attention_mask"].bool()
    expected = {
        "text_loss": cross_entropy(out.prediction_logits, targets["labels"]),
        "idae_text_loss": cross_entropy(idae_logits, targets["idae_labels"]),
        "audio_loss": (out.audio_predictions - targets["audio_labels"]).abs()[frames].mean(),
        "idae_audio_loss": (idae_frames - targets["idae_audio_labels"]).abs()[frames].mean(),
    }
    for name, value in expected.items():
        torch.testing.assert_close(out[name], value, msg=name)
    total = 0.5 * (expected["idae_text_loss"] + 3 * expected["idae_audio_loss"])
    total = total + 2.0 * (expected["text_loss"] + 3 * expected["audio_loss"])
    torch.testing.assert_close(out.loss, total)
    # The text head's output embeddings are what the tied decoder scores against the token embeddings.
    torch.testing.assert_close(
        out.prediction_logits,
        out.text_output_embeddings @ model.lrat.word_embeddings.weight.T + model.text_head.decoder.bias,
    )
    with pytest.raises(ValueError, match="go together"):
        model(**batch, audio_labels=targets["audio_labels"])


def test_translation_is_one_pass_from_the_all_mask_input_or_the_previous_translation(batch) -> None:
    model = build(LratForPreTraining).eval()
    audio = {"input_features": batch["input_features"], "audio_attention_mask": batch["audio_attention_mask"]}
    with torch.no_grad():
        first = model.translate_audio_to_text(**audio)
        by_hand = model(**audio, decoder_input_ids=torch.full((3, 10), MASK))
        second = model.translate_audio_to_text(**audio, decoder_inputs_embeds=first.text_embeddings)
        fed_back = model(**audio, decoder_inputs_embeds=first.text_embeddings)
        to_audio = model.translate_text_to_audio(batch["input_ids"], batch["attention_mask"])
        to_audio_by_hand = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            decoder_input_features=torch.zeros(3, 60, 160),
        )
    assert first.text_embeddings.shape == (3, 10, 16) and first.text_logits.shape == (3, 10, VOCAB)
    torch.testing.assert_close(first.text_logits, by_hand.prediction_logits)
    torch.testing.assert_close(second.text_embeddings, fed_back.text_output_embeddings)
    assert (second.text_embeddings - first.text_embeddings).abs().max() > 1e-3
    assert to_audio.audio_features.shape == (3, 60, 160)
    torch.testing.assert_close(to_audio.audio_features, to_audio_by_hand.audio_predictions)


# --- fine-tuning heads ----------------------------------------------------------------------------------------------


def test_sequence_classification_fuses_mean_pooled_cross_encoder_states(batch) -> None:
    model = build(LratForSequenceClassification, num_labels=1).eval()
    with torch.no_grad():
        out = model(**batch, labels=torch.tensor([0.5, -1.0, 2.0]))
        states = model.lrat(**batch)
    fused = torch.cat(
        [
            masked_mean_pool(states.text_last_hidden_state, batch["attention_mask"]),
            masked_mean_pool(states.audio_last_hidden_state, batch["audio_attention_mask"]),
        ],
        dim=-1,
    )
    torch.testing.assert_close(out.embeddings, fused)
    torch.testing.assert_close(out.logits, model.classifier(fused))
    # num_labels = 1 is the paper's sentiment regression, trained with L1.
    torch.testing.assert_close(out.loss, (out.logits[:, 0] - torch.tensor([0.5, -1.0, 2.0])).abs().mean())
    classifier = build(LratForSequenceClassification, num_labels=4).eval()
    with torch.no_grad():
        logits = classifier(**batch).logits
        loss = classifier(**batch, labels=torch.tensor([0, 3, 1])).loss
    torch.testing.assert_close(loss, F.cross_entropy(logits, torch.tensor([0, 3, 1])))


def test_xvector_embeddings_come_before_the_classifier(batch) -> None:
    model = build(LratForXVector, num_labels=5).eval()
    with torch.no_grad():
        out = model(**batch, labels=torch.tensor([0, 4, 2]))
        fused = model.lrat(**batch)
    h_fuse = torch.cat(
        [
            masked_mean_pool(fused.text_last_hidden_state, batch["attention_mask"]),
            masked_mean_pool(fused.audio_last_hidden_state, batch["audio_attention_mask"]),
        ],
        dim=-1,
    )
    embeddings = model.embedding(F.gelu(model.dense(h_fuse)))
    assert out.embeddings.shape == (3, 16)
    torch.testing.assert_close(out.embeddings, embeddings)
    torch.testing.assert_close(out.logits, model.classifier(F.gelu(embeddings)))
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, torch.tensor([0, 4, 2])))


# --- saving and loading ---------------------------------------------------------------------------------------------


def test_text_decoder_is_tied_to_the_token_embeddings(pretraining_checkpoint: Path) -> None:
    reloaded = LratForPreTraining.from_pretrained(pretraining_checkpoint)
    assert reloaded.text_head.decoder.weight is reloaded.lrat.word_embeddings.weight
    assert "text_head.decoder.weight" not in load_file(str(pretraining_checkpoint / "model.safetensors"))


def test_missing_weights_are_initialised(pretraining_checkpoint: Path, tmp_path: Path) -> None:
    for name in os.listdir(pretraining_checkpoint):
        (tmp_path / name).write_bytes((pretraining_checkpoint / name).read_bytes())
    weights = load_file(str(tmp_path / "model.safetensors"))
    # Fill every tensor with a marker value, then drop a few: the dropped ones must come back initialised.
    dropped = [
        "lrat.text_embeddings.inputs.weight",
        "lrat.audio_embeddings.inputs.bias",
        "lrat.text_cross_encoder.1.cross_attention_norm.LayerNorm.weight",
        "lrat.audio_cross_encoder.0.cross_attention.key.bias",
        "audio_head.decoder.weight",
        "text_head.decoder.bias",
    ]
    kept = {name: torch.full_like(value, 7.0) for name, value in weights.items() if name not in dropped}
    save_file(kept, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    model, info = LratForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
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
    assert (state["lrat.text_encoder.0.attention.query.weight"] == 7.0).all()


def test_pretrained_encoder_loads_into_the_heads(pretraining_checkpoint: Path) -> None:
    pretrained = LratForPreTraining.from_pretrained(pretraining_checkpoint)
    for auto_class, head_class in (
        (AutoModelForSequenceClassification, LratForSequenceClassification),
        (AutoModelForAudioXVector, LratForXVector),
    ):
        model, info = auto_class.from_pretrained(
            pretraining_checkpoint, num_labels=3, output_loading_info=True
        )
        assert type(model) is head_class
        assert not info["unexpected_keys"]
        assert all(not key.startswith("lrat.") for key in info["missing_keys"])
        for name, value in pretrained.lrat.state_dict().items():
            torch.testing.assert_close(model.lrat.state_dict()[name], value, atol=0, rtol=0)


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
        translation = model.translate_audio_to_text(inputs["input_features"]).text_embeddings
        embeddings = xvector(**inputs).embeddings
    print(json.dumps({
        "classes": [type(config).__module__, type(processor).__module__, type(model).__module__,
                    type(xvector).__module__],
        "loaded": sorted(name for name in sys.modules if name.startswith("audiolang")),
        "logits": logits.sum().item(),
        "translation": translation.sum().item(),
        "embeddings": embeddings.sum().item(),
    }))
    """
)


def test_trust_remote_code_loads_where_audiolang_is_not_importable(
    tmp_path: Path, run_without_audiolang
) -> None:
    tokenizer = train_ctal_tokenizer(
        ["navigate home", "open the window", "play some music"] * 5, vocab_size=300
    )
    config = tiny_config(vocab_size=len(tokenizer))
    processor = LratProcessor.from_config(config, tokenizer)
    models = {
        "pretraining": LratForPreTraining(config),
        "speaker": LratForXVector(tiny_config(vocab_size=len(tokenizer), num_labels=4)),
    }
    for name, model in models.items():
        model.save_pretrained(tmp_path / name)
        processor.save_pretrained(tmp_path / name)
    report = run_without_audiolang(
        TRUST_REMOTE_CODE_SCRIPT, tmp_path / "pretraining", tmp_path / "speaker", workdir=tmp_path
    )
    assert all(module.startswith("transformers_modules.") for module in report["classes"]), report["classes"]
    assert report["loaded"] == ["audiolang"]  # only the blocking `None` entry: nothing came from the package

    local_processor = AutoProcessor.from_pretrained(tmp_path / "pretraining")
    assert type(local_processor) is LratProcessor
    clip = torch.linspace(-1, 1, 6000).sin().numpy()
    inputs = local_processor(audio=[clip], text=["navigate home"], sampling_rate=16_000, return_tensors="pt")
    with torch.no_grad():
        logits = models["pretraining"].eval()(**inputs).prediction_logits
        translation = models["pretraining"].translate_audio_to_text(inputs["input_features"]).text_embeddings
        embeddings = models["speaker"].eval()(**inputs).embeddings
    assert report["logits"] == pytest.approx(logits.sum().item(), abs=1e-3)
    assert report["translation"] == pytest.approx(translation.sum().item(), abs=1e-3)
    assert report["embeddings"] == pytest.approx(embeddings.sum().item(), abs=1e-4)
