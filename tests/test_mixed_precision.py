"""Mixed precision on the CPU, for every family's pre-training and fine-tuning step, through the path `--bf16 true`
takes (Trainer -> accelerate's autocast around the prepared model's forward, `--use_cpu true` on a machine without
a GPU): the bf16 loss is within BF16_LOSS_RTOL of the fp32 loss on the same batch, the gradients are finite and point
the same way, the weights, gradients and saved folder stay fp32. A folder loaded with `dtype=torch.bfloat16` runs its
forward and the `audio-text-classification` pipeline. `--bf16 true` without `--use_cpu` on a machine without a bf16
GPU stops with the flag to add.

The measured bf16-vs-fp32 differences per family are in docs/training-at-scale.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from model_tester import (
    NUM_LABELS,
    class_labels,
    ctal_config,
    ctal_pretraining_targets,
    dsclap_config,
    frame_inputs,
    lrat_config,
    lrat_pretraining_targets,
    turbo_config,
    waveform_inputs,
)
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoProcessor, TrainerCallback, pipeline

from audiolang import (
    CtalForPreTraining,
    CtalForSequenceClassification,
    DsclapForSequenceClassification,
    DsclapModel,
    DsclapProcessor,
    LratForPreTraining,
    LratForSequenceClassification,
    TurboConfig,
    TurboForSequenceClassification,
    TurboModel,
    TurboProcessor,
)
from audiolang.pipelines import AudioTextClassificationPipeline
from audiolang.training import AudioTextTrainer, AudioTextTrainingArguments

# bf16 keeps 8 bits of mantissa (relative rounding 2^-9 per operation); through a few tiny layers the losses measured
# here differ from fp32 by at most 0.53% (docs/training-at-scale.md). 2% is the stated bound.
BF16_LOSS_RTOL = 2e-2
# The bf16 gradient of every step points where the fp32 one does (cosine of the flattened gradients).
MIN_GRADIENT_COSINE = 0.99


def cases() -> dict[str, tuple]:
    """`name: (model builder, batch)` for each family's pre-training and fine-tuning step, on 3 seeded rows."""
    dual, frames = waveform_inputs(3, seed=0), frame_inputs(3, seed=0)

    def targets(make, inputs) -> dict:
        return make(inputs, torch.Generator().manual_seed(1))

    return {
        "dsclap-pretrain": (lambda: DsclapModel(dsclap_config()), dual),
        "dsclap-finetune": (
            lambda: DsclapForSequenceClassification(dsclap_config(num_labels=NUM_LABELS)),
            {**dual, **targets(class_labels, dual)},
        ),
        # Turbo's two views differ by their dropout masks: the preset's dropout is on here.
        "turbo-pretrain": (
            lambda: TurboModel(TurboConfig.from_preset("tiny")),
            {**dual, "return_loss": True},
        ),
        "turbo-finetune": (
            lambda: TurboForSequenceClassification(TurboConfig.from_preset("tiny", num_labels=3)),
            {**dual, **targets(class_labels, dual)},
        ),
        "ctal-pretrain": (
            lambda: CtalForPreTraining(ctal_config()),
            {**frames, **targets(ctal_pretraining_targets, frames)},
        ),
        "ctal-finetune": (
            lambda: CtalForSequenceClassification(ctal_config()),
            {**frames, **targets(class_labels, frames)},
        ),
        "lrat-pretrain": (
            lambda: LratForPreTraining(lrat_config()),
            {**frames, **targets(lrat_pretraining_targets, frames)},
        ),
        "lrat-finetune": (
            lambda: LratForSequenceClassification(lrat_config()),
            {**frames, **targets(class_labels, frames)},
        ),
    }


CASES = [
    f"{family}-{step}" for family in ("dsclap", "turbo", "ctal", "lrat") for step in ("pretrain", "finetune")
]


class GradientsBeforeTheStep(TrainerCallback):
    """The gradients as back-propagated, before the optimizer step (and without clipping: max_grad_norm=0)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.grads = model, {}

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.grads = {
            n: p.grad.detach().clone() for n, p in self.model.named_parameters() if p.grad is not None
        }


def one_trainer_step(build, batch, bf16: bool, output_dir) -> tuple[float, dict, torch.nn.Module, list]:
    """One optimizer step of `AudioTextTrainer` on `batch` (the run scripts' Trainer and arguments), from the same
    seeded weights and random state; returns the loss, the gradients, the model, and the dtypes that the first
    linear layer computed in."""
    torch.manual_seed(0)
    model = build()
    linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    computed_in: list[torch.dtype] = []
    linear.register_forward_hook(lambda module, args, output: computed_in.append(output.dtype))
    args = AudioTextTrainingArguments(
        str(output_dir),
        bf16=bf16,
        use_cpu=True,
        max_steps=1,
        per_device_train_batch_size=1,
        learning_rate=1e-3,
        max_grad_norm=0.0,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=0,
    )
    grads = GradientsBeforeTheStep(model)
    trainer = AudioTextTrainer(
        model=model,
        args=args,
        train_dataset=[batch],
        data_collator=lambda rows: dict(rows[0]),
        callbacks=[grads],
    )
    loss = trainer.train().training_loss
    if bf16:
        trainer.save_model(str(output_dir / "saved"))
    return loss, grads.grads, model, computed_in


@pytest.mark.parametrize("case", CASES)
def test_bf16_autocast_step_matches_fp32(case, tmp_path) -> None:
    build, batch = cases()[case]
    fp32_loss, fp32_grads, _, fp32_dtypes = one_trainer_step(build, batch, False, tmp_path / "fp32")
    loss, grads, model, dtypes = one_trainer_step(build, batch, True, tmp_path / "bf16")
    assert set(fp32_dtypes) == {torch.float32} and set(dtypes) == {
        torch.bfloat16
    }  # autocast was on, and only then
    assert np.isfinite(loss) and loss == pytest.approx(fp32_loss, rel=BF16_LOSS_RTOL)
    assert grads.keys() == fp32_grads.keys() and grads
    flat, fp32_flat = (torch.cat([g[n].flatten() for n in sorted(g)]) for g in (grads, fp32_grads))
    assert torch.isfinite(flat).all()
    assert torch.nn.functional.cosine_similarity(flat, fp32_flat, dim=0) >= MIN_GRADIENT_COSINE
    # fp32 master weights: the optimizer updated fp32 parameters with fp32 gradients.
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert {g.dtype for g in grads.values()} == {torch.float32}
    saved = load_file(tmp_path / "bf16" / "saved" / "model.safetensors")
    assert {tensor.dtype for tensor in saved.values()} == {torch.float32}


def test_bf16_without_a_gpu_or_use_cpu_names_the_flag(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    with pytest.raises(ValueError, match="add --use_cpu true"):
        AudioTextTrainingArguments(str(tmp_path), bf16=True)
    # `accelerate launch --cpu` has chosen the CPU already: that choice is taken.
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")
    assert AudioTextTrainingArguments(str(tmp_path), bf16=True, report_to="none").use_cpu


def test_run_pretrain_stops_before_anything_on_bf16_without_use_cpu_or_micro_batches_for_ctal(
    tmp_path,
) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "run_scripts"))
    from run_pretrain import main

    out = tmp_path / "out"
    with pytest.raises(ValueError, match="add --use_cpu true"):
        main(["--output_dir", str(out), "--bf16", "true", "--report_to", "none"])
    with pytest.raises(
        ValueError, match="--contrastive_micro_batch_size applies to contrastive pre-training"
    ):
        main(["--model_type", "ctal", "--output_dir", str(out), "--contrastive_micro_batch_size", "8"])
    assert not out.exists()


@pytest.fixture(scope="module")
def classifier_folders(tmp_path_factory, dsclap_tokenizer) -> dict[str, object]:
    """A saved fp32 DSCLAP and Turbo classifier with their processors."""
    root = tmp_path_factory.mktemp("bf16_folders")
    torch.manual_seed(0)
    dsclap, turbo = dsclap_config(), turbo_config()
    folders = {}
    for name, model, processor in (
        (
            "dsclap",
            DsclapForSequenceClassification(dsclap),
            DsclapProcessor.from_config(dsclap, dsclap_tokenizer),
        ),
        ("turbo", TurboForSequenceClassification(turbo), TurboProcessor.from_config(turbo, dsclap_tokenizer)),
    ):
        model.save_pretrained(root / name)
        processor.save_pretrained(root / name)
        folders[name] = root / name
    return folders


@pytest.mark.parametrize("family", ["dsclap", "turbo"])
def test_a_folder_loaded_in_bf16_runs_forward_and_the_pipeline(
    family, classifier_folders, dsclap_waveforms
) -> None:
    """Loaded with `dtype=torch.bfloat16` (`torch_dtype=` in older transformers): the inputs are cast to the model's
    dtype as for transformers' own audio models (`BatchFeature.to` casts the floating-point tensors only); the
    pipeline does it itself. Both agree with the fp32 model's probabilities to bf16 precision."""
    folder = classifier_folders[family]
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.bfloat16).eval()
    fp32 = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    clips = dsclap_waveforms(6000, 8000, seed=3)
    texts = ["navigate home", "play some music"]
    inputs = AutoProcessor.from_pretrained(folder)(
        audio=clips, text=texts, sampling_rate=16_000, return_tensors="pt"
    )
    with torch.no_grad():
        expected = fp32(**inputs).logits.softmax(-1)
        logits = model(**inputs.to(torch.bfloat16)).logits  # BatchFeature.to casts in place
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float().softmax(-1), expected, atol=2e-2, rtol=0)
    classifier = pipeline(
        "audio-text-classification",
        model=str(folder),
        pipeline_class=AudioTextClassificationPipeline,
        device="cpu",
        dtype=torch.bfloat16,
    )
    assert classifier.model.dtype == torch.bfloat16
    results = classifier(clips, sampling_rate=16_000, transcript=texts, top_k=None)
    for row, result in enumerate(results):
        scores = {item["label"]: item["score"] for item in result}
        want = {fp32.config.id2label[i]: float(p) for i, p in enumerate(expected[row])}
        assert scores == pytest.approx(want, abs=2e-2)


def test_saving_in_bf16_is_asked_for_by_loading_or_casting_in_bf16(classifier_folders, tmp_path) -> None:
    """The saved dtype is the weights' dtype: fp32 after mixed-precision training, bf16 when asked for."""
    model = AutoModelForSequenceClassification.from_pretrained(
        classifier_folders["dsclap"], dtype=torch.bfloat16
    )
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    assert {tensor.dtype for tensor in saved.values()} == {torch.bfloat16}
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "bfloat16"
