"""Gradient caching (GradCache, Gao et al. 2021) for DSCLAP and Turbo: the loss and every parameter gradient equal
those of the whole batch back-propagated in one pass; with dropout on, the replayed random state makes the second pass
reproduce the first (the reference is then the same micro-batches run once with graphs); the Trainer path
(`--contrastive_micro_batch_size`) trains to the same weights. Two processes: tests/test_dsclap_losses.py."""

from __future__ import annotations

import pytest
import torch
from model_tester import waveform_inputs
from transformers import default_data_collator

from audiolang import (
    CtalConfig,
    CtalForPreTraining,
    DsclapModel,
    TurboConfig,
    TurboForSequenceClassification,
    TurboModel,
)
from audiolang.training import AudioTextTrainer, AudioTextTrainingArguments, gradient_cached_backward

BATCH = 6


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    """Six paired rows of different audio and text lengths, padded as a collator pads them."""
    return waveform_inputs(BATCH, seed=0)


def gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def assert_same_gradients(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Equal up to float32 summation order: each element within 1e-5 of its tensor's largest magnitude."""
    assert actual.keys() == expected.keys()
    for name, grad in expected.items():
        scale = grad.abs().max().item()
        torch.testing.assert_close(actual[name], grad, atol=1e-5 * scale + 1e-8, rtol=1e-4, msg=name)


def micro_batches(inputs: dict[str, torch.Tensor], size: int) -> list[dict[str, torch.Tensor]]:
    return [{k: v[start : start + size] for k, v in inputs.items()} for start in range(0, BATCH, size)]


def one_pass_over_micro_batches(model, inputs, size: int, **loss_inputs):
    """The reference with dropout on: the same micro-batches, in the same order from the same random state, embedded
    once with graphs, and the loss back-propagated through everything at once."""
    pieces = [model.contrastive_embeddings(**micro) for micro in micro_batches(inputs, size)]
    out = model.contrastive_loss_from_embeddings(
        tuple(torch.cat(parts) for parts in zip(*pieces, strict=True)), **loss_inputs
    )
    out.loss.backward()
    return out


def tiny_turbo(model_class, dropout: float, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    # `hidden_dropout` is the encoders' hidden dropout and the one after FC_a / FC_t.
    config = TurboConfig.from_preset("tiny", hidden_dropout=dropout, **overrides)
    for sub in (config.audio_config, config.text_config):
        for name in (
            "attention_dropout",
            "activation_dropout",
            "feat_proj_dropout",
            "attention_probs_dropout_prob",
        ):
            if hasattr(sub, name):
                setattr(sub, name, dropout)
    return model_class(config).train()


@pytest.mark.parametrize("micro_batch_size", [2, 4])
def test_dsclap_matches_the_whole_batch_in_one_pass(dsclap_config_factory, batch, micro_batch_size) -> None:
    """No dropout: the full forward and the cached one compute the same function. K = 3 hard negatives are drawn from
    a seeded generator once per batch in both; 4 leaves a last micro-batch of 2."""
    torch.manual_seed(0)
    model = DsclapModel(dsclap_config_factory(num_hard_negatives=3)).train()
    full = model(**batch, hard_negative_generator=torch.Generator().manual_seed(1))
    full.loss.backward()
    expected = gradients(model)
    cached = gradient_cached_backward(
        model, {**batch, "hard_negative_generator": torch.Generator().manual_seed(1)}, micro_batch_size
    )
    assert cached.loss.item() == pytest.approx(full.loss.item(), abs=1e-6)
    for part in (
        "audio_contrastive_loss",
        "text_contrastive_loss",
        "audio_matching_loss",
        "text_matching_loss",
    ):
        assert cached[part].item() == pytest.approx(full[part].item(), abs=1e-6), part
    assert "logit_scale" in expected  # the temperature's gradient comes from the loss step alone
    assert_same_gradients(gradients(model), expected)


def test_dsclap_with_dropout_replays_each_micro_batch_and_leaves_the_random_stream_alone(
    dsclap_config_factory, batch
) -> None:
    config = dsclap_config_factory(
        audio_config={"hidden_dropout": 0.3}, text_config={"hidden_dropout_prob": 0.3}
    )
    torch.manual_seed(0)
    model = DsclapModel(config).train()
    torch.manual_seed(7)
    reference = one_pass_over_micro_batches(model, batch, 2)
    after_reference = torch.rand(3)
    expected = gradients(model)
    torch.manual_seed(7)
    cached = gradient_cached_backward(model, batch, 2)
    # The stream continues as after one pass: caching draws nothing a plain step would not.
    torch.testing.assert_close(torch.rand(3), after_reference, atol=0, rtol=0)
    assert cached.loss.item() == pytest.approx(reference.loss.item(), abs=1e-6)
    assert_same_gradients(gradients(model), expected)
    # Dropout really is on: another random state gives another loss.
    torch.manual_seed(8)
    assert gradient_cached_backward(model, batch, 2).loss.item() != pytest.approx(
        cached.loss.item(), abs=1e-4
    )


def test_turbo_matches_the_whole_batch_without_dropout(batch) -> None:
    model = tiny_turbo(TurboModel, dropout=0.0)
    full = model(**batch, return_loss=True)
    full.loss.backward()
    expected = gradients(model)
    cached = gradient_cached_backward(model, batch, 4)
    assert cached.loss.item() == pytest.approx(full.loss.item(), abs=1e-5)
    assert cached.cross_modal_loss.item() == pytest.approx(full.cross_modal_loss.item(), abs=1e-5)
    assert_same_gradients(gradients(model), expected)


@pytest.mark.parametrize("model_class", [TurboModel, TurboForSequenceClassification])
def test_turbo_two_dropout_views_are_replayed(batch, model_class) -> None:
    """Both views of a row come from one micro-batch's replayed state; the classifier's CE and the contrastive terms
    (lambda = 0.5) take their gradients through the same cached embeddings."""
    model = tiny_turbo(model_class, dropout=0.3, num_labels=3, classification_weight=0.5)
    labels = (
        {"labels": torch.tensor([0, 2, 1, 2, 0, 1])} if model_class is TurboForSequenceClassification else {}
    )
    torch.manual_seed(3)
    reference = one_pass_over_micro_batches(model, batch, 2, **labels)
    expected = gradients(model)
    torch.manual_seed(3)
    cached = gradient_cached_backward(model, {**batch, **labels}, 2)
    assert len(model.contrastive_embeddings(**micro_batches(batch, 2)[0])) == 4  # two views of audio and text
    assert cached.loss.item() == pytest.approx(reference.loss.item(), abs=1e-5)
    assert_same_gradients(gradients(model), expected)


def test_a_model_without_it_is_refused_with_the_flag_named(batch) -> None:
    model = CtalForPreTraining(CtalConfig.from_preset("tiny", vocab_size=64))
    with pytest.raises(ValueError, match="contrastive_micro_batch_size.*DSCLAP and Turbo"):
        gradient_cached_backward(model, batch, 2)
    with pytest.raises(ValueError, match="contrastive_micro_batch_size must be >= 1"):
        AudioTextTrainingArguments("unused", contrastive_micro_batch_size=0)


def test_trainer_with_micro_batches_trains_to_the_same_weights(
    dsclap_config_factory, batch, tmp_path
) -> None:
    """`--contrastive_micro_batch_size` through AudioTextTrainer: two optimizer steps of 2 accumulated batches of 6
    rows (the loss scaled for accumulation as Trainer scales it) end with the weights of the uncached run."""
    rows = [{k: v[i] for k, v in batch.items()} for i in range(BATCH)] * 4

    def train(micro_batch_size: int | None, out: str) -> tuple[dict[str, torch.Tensor], list[float]]:
        torch.manual_seed(0)
        model = DsclapModel(dsclap_config_factory())
        args = AudioTextTrainingArguments(
            str(tmp_path / out),
            per_device_train_batch_size=BATCH,
            gradient_accumulation_steps=2,
            max_steps=2,
            learning_rate=1e-3,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            use_cpu=True,
            seed=0,
            contrastive_micro_batch_size=micro_batch_size,
        )
        trainer = AudioTextTrainer(
            model=model, args=args, train_dataset=rows, data_collator=default_data_collator
        )
        trainer.train()
        logs = [
            e["audio_contrastive_loss"] for e in trainer.state.log_history if "audio_contrastive_loss" in e
        ]
        return {k: v.detach().clone() for k, v in model.state_dict().items()}, logs

    plain, plain_logs = train(None, "plain")
    cached, cached_logs = train(4, "cached")
    assert cached_logs == pytest.approx(plain_logs, abs=1e-6) and len(plain_logs) == 2
    for name, value in plain.items():
        torch.testing.assert_close(cached[name], value, atol=1e-6, rtol=1e-5, msg=name)
