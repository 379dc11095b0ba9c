"""A frozen audio tower's pooled output computed once per clip (`cache_frozen_audio`) trains the classifier exactly as
running the tower every epoch does, and is refused where the tower would differ between epochs."""

from __future__ import annotations

import pytest
import torch
from datasets import load_from_disk
from helpers import script_module
from safetensors.torch import load_file

from audiolang import DsclapForSequenceClassification, DsclapProcessor
from audiolang.training import (
    AUDIO_POOLER_OUTPUT_COLUMN,
    DataCollatorForAudioText,
    cache_frozen_audio,
    frozen_audio_cache_blocker,
)


def _classifier(config_factory, **overrides) -> DsclapForSequenceClassification:
    torch.manual_seed(0)
    return DsclapForSequenceClassification(
        config_factory(num_labels=2, freeze_audio_encoder=True, **overrides)
    ).eval()


def test_cached_pooled_output_gives_the_same_logits(
    dsclap_config_factory, dsclap_tokenizer, audio_text_dataset
):
    model = _classifier(dsclap_config_factory)
    processor = DsclapProcessor.from_config(model.config, dsclap_tokenizer)
    rows = load_from_disk(str(audio_text_dataset))["train"].select(range(6))
    assert frozen_audio_cache_blocker(model) is None
    cached = cache_frozen_audio(model, processor, rows, "asr_text", progress=None)
    assert AUDIO_POOLER_OUTPUT_COLUMN in cached.column_names
    collate = DataCollatorForAudioText(processor, text_column="asr_text", label_column="directed")
    with_audio = collate([rows[i] for i in range(6)])
    with_cache = collate([cached[i] for i in range(6)])
    assert "input_values" not in with_cache and with_cache["audio_pooler_output"].shape == (6, 32)
    with torch.no_grad():
        expected = model(**with_audio)
        got = model(**with_cache)
    torch.testing.assert_close(got.logits, expected.logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.loss, expected.loss)


def test_blocked_where_the_tower_differs_between_epochs(dsclap_config_factory):
    trainable = DsclapForSequenceClassification(dsclap_config_factory(num_labels=2))
    assert "trains" in frozen_audio_cache_blocker(trainable)
    dropout = _classifier(dsclap_config_factory, audio_config={"hidden_dropout": 0.1})
    assert "random in training" in frozen_audio_cache_blocker(dropout)
    spec_augment = _classifier(
        dsclap_config_factory, audio_config={"apply_spec_augment": True, "mask_time_prob": 0.05}
    )
    assert "mask_time_prob" in frozen_audio_cache_blocker(spec_augment)
    text_only = _classifier(dsclap_config_factory, classifier_inputs="text")
    assert "does not read the audio" in frozen_audio_cache_blocker(text_only)


@pytest.mark.parametrize("classifier_dropout", [0.0, 0.3])
def test_finetuning_with_the_cache_equals_running_the_tower(
    dsclap_checkpoint, audio_text_dataset, tmp_path, classifier_dropout
):
    """Same seed, same data: the trained weights and the test scores are the same whether the frozen tower runs every
    epoch or once (the cache leaves the training's random stream untouched, so dropout draws the same masks)."""
    results = {}
    for cache in ("true", "false"):
        out = tmp_path / f"cache-{cache}"
        results[cache] = script_module("run_finetune").main(
            [
                "--model_name_or_path", str(dsclap_checkpoint),
                "--dataset_path", str(audio_text_dataset),
                "--task", "directed",
                "--freeze_audio_encoder", "true",
                "--cache_frozen_audio", cache,
                "--config_overrides", f"classifier_dropout={classifier_dropout}",
                "--num_train_epochs", "2",
                "--per_device_train_batch_size", "4",
                "--per_device_eval_batch_size", "4",
                "--output_dir", str(out),
                "--disable_tqdm", "true",
                "--use_cpu", "true",
                "--seed", "0",
            ]
        )  # fmt: skip
    weights = {c: load_file(tmp_path / f"cache-{c}" / "model.safetensors") for c in results}
    for name, tensor in weights["false"].items():
        torch.testing.assert_close(weights["true"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    assert results["true"]["test_accuracy"] == results["false"]["test_accuracy"]
    assert results["true"]["best_epoch"] == results["false"]["best_epoch"]
