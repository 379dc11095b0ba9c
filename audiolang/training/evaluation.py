"""Evaluation that needs a model and data: outputs over a dataset, audio-text retrieval, CTAL's pre-training
objectives, the test split of a fine-tuning run and speaker verification on unseen speakers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import BatchFeature, Trainer
from transformers.trainer_utils import PredictionOutput

from ..metrics import alignment, speaker_verification_eer, uniformity
from ..modeling_turbo import TurboForSequenceClassification
from .collators import DataCollatorForAudioText


@torch.no_grad()
def collect_outputs(
    model: Any,
    processor: Any,
    dataset: Dataset,
    text_column: str,
    select: Callable[[Any, BatchFeature], tuple[torch.Tensor, ...]],
    batch_size: int = 32,
    audio_column: str = "audio",
    progress: str | None = None,
    **model_kwargs: Any,
) -> tuple[torch.Tensor, ...]:
    """Run `model` in eval mode over every row of `dataset` (in order) and concatenate what `select(output,
    batch)` picks from each batch's output, as float32 CPU tensors; with `progress`, a progress bar of that name.

    Torch's global random state is the same afterwards as before (`untouched_random_state`)."""
    model.eval()
    collator = DataCollatorForAudioText(processor, audio_column=audio_column, text_column=text_column)
    parts: list[tuple[torch.Tensor, ...]] = []
    batches = DataLoader(dataset, batch_size=batch_size, collate_fn=collator)
    with untouched_random_state():
        for batch in tqdm(batches, desc=progress, unit="batch", disable=progress is None):
            batch = batch.to(model.device)
            parts.append(tuple(t.float().cpu() for t in select(model(**batch, **model_kwargs), batch)))
    return tuple(torch.cat(column) for column in zip(*parts, strict=True))


def untouched_random_state() -> contextlib.AbstractContextManager:
    """A context in which torch's global CPU generator may be drawn from without effect outside it.

    An evaluation inside a training run must not move the training's random stream: iterating a `DataLoader` draws
    its base seed from the global generator (a tqdm bar around it draws once more), and the length-grouped sampler
    and dropout that follow would then sample differently from a run that evaluates less often. Eval-mode forward
    passes draw no random numbers on an accelerator, so the CPU generator is the one to restore."""
    return torch.random.fork_rng(devices=[])


def embed_dataset(
    model: Any, processor: Any, dataset: Dataset, text_column: str, batch_size: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised (audio, text) joint embeddings of a contrastive dual encoder for every row, in order."""
    audio, text = collect_outputs(
        model,
        processor,
        dataset,
        text_column,
        lambda out, batch: (out.audio_embeds, out.text_embeds),
        batch_size,
        return_loss=False,
    )
    return audio, text


def retrieval_metrics(
    audio_embeds: torch.Tensor, text_embeds: torch.Tensor, ks: tuple[int, ...] = (1, 5)
) -> dict[str, float]:
    """Recall@k of audio->text and text->audio retrieval, row i's partner being row i.

    Rows with identical transcripts are different items: retrieving an equal transcript of another row
    counts as a miss, the strict convention.
    """
    if audio_embeds.shape != text_embeds.shape:
        raise ValueError(
            f"audio and text embeddings differ in shape: {tuple(audio_embeds.shape)} vs {tuple(text_embeds.shape)}"
        )
    sims = audio_embeds @ text_embeds.T
    target = torch.arange(sims.shape[0])
    metrics = {}
    for name, s in (("audio_to_text", sims), ("text_to_audio", sims.T)):
        # rank of the true partner: how many candidates score strictly higher
        rank = (s > s[target, target].unsqueeze(1)).sum(dim=1)
        for k in ks:
            metrics[f"{name}_r@{k}"] = float((rank < k).float().mean())
    return metrics


@torch.no_grad()
def ctal_loss_parts(model: Any, collator: Any, dataset: Dataset, batch_size: int = 32) -> dict[str, float]:
    """CTAL's pre-training objectives on `dataset`: the MLM loss, the MLM accuracy on the masked tokens and the
    MCAM L1 (Sec. 3.2), as `eval_mlm_loss`, `eval_mlm_accuracy` and `eval_mcam_l1`, each a mean over batches.

    `collator` is a `DataCollatorForCtalPreTraining`: pass a freshly seeded one to mask the split identically every
    time (e.g. before and after pre-training, so that the two measurements differ by the model alone).
    """
    model.eval()
    mlm, mcam, correct, masked, batches = 0.0, 0.0, 0, 0, 0
    with untouched_random_state():
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collator):
            out = model(**batch.to(model.device))
            selected = batch["labels"] != -100
            correct += int((out.prediction_logits.argmax(-1)[selected] == batch["labels"][selected]).sum())
            masked += int(selected.sum())
            mlm, mcam, batches = mlm + float(out.mlm_loss), mcam + float(out.mcam_loss), batches + 1
    if batches == 0:
        raise ValueError("`dataset` has no rows: the CTAL losses need at least one batch.")
    return {
        "eval_mlm_loss": mlm / batches,
        "eval_mlm_accuracy": correct / max(masked, 1),
        "eval_mcam_l1": mcam / batches,
    }


def evaluate_test_split(
    trainer: Trainer,
    test_dataset: Dataset,
    output_dir: str | Path | None = None,
    metric_key_prefix: str = "test",
    return_outputs: bool = False,
) -> dict[str, float] | tuple[dict[str, float], PredictionOutput]:
    """The task metrics of `trainer.predict` on `test_dataset` (`<metric_key_prefix>_*`); for models whose predictions
    carry joint audio and text embeddings (Turbo: `(logits, audio_embeds, text_embeds)`), also their alignment and
    uniformity (Wang & Isola, 2020), and the embeddings themselves in `output_dir/<metric_key_prefix>_embeddings.npz`
    when `output_dir` is given. With `return_outputs`, `(metrics, prediction)`: the `PredictionOutput` too (e.g. for
    `audiolang.plots.write_evaluation_plots`)."""
    prediction = trainer.predict(test_dataset, metric_key_prefix=metric_key_prefix)
    metrics = {k: v for k, v in prediction.metrics.items() if isinstance(v, (int, float))}
    if not isinstance(trainer.model, TurboForSequenceClassification):
        return (metrics, prediction) if return_outputs else metrics
    audio, text = (np.asarray(part) for part in prediction.predictions[1:3])
    metrics[f"{metric_key_prefix}_alignment"] = alignment(audio, text)
    metrics[f"{metric_key_prefix}_uniformity_audio"] = uniformity(audio)
    metrics[f"{metric_key_prefix}_uniformity_text"] = uniformity(text)
    if output_dir is not None and trainer.is_world_process_zero():
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        np.savez(
            Path(output_dir) / f"{metric_key_prefix}_embeddings.npz",
            audio=audio,
            text=text,
            labels=prediction.label_ids,
        )
    return (metrics, prediction) if return_outputs else metrics


def check_model_labels(config: Any, label_names: list[str] | None, task: str) -> None:
    """Raise a `ValueError` unless a classifier's outputs are the task's classes, in the same order (`label_names`
    as `task_dataset` gives them; None for regression, which needs a single output)."""
    if label_names is None:
        if config.num_labels != 1:
            raise ValueError(
                f"--task {task} is regression, but the model has {config.num_labels} outputs: evaluate a model "
                f"fine-tuned on {task} (num_labels=1)."
            )
        return
    model_labels = [config.id2label[i] for i in range(config.num_labels)]
    if model_labels != list(label_names):
        raise ValueError(
            f"the model's labels {model_labels} are not the classes of --task {task} {list(label_names)}: evaluate "
            "a model fine-tuned on this task (its config's id2label names the classes in order)."
        )


def speaker_verification_metrics(
    trainer: Trainer,
    processor: Any,
    trials: Dataset,
    text_column: str,
    audio_column: str = "audio",
    speaker_column: str = "speaker_id",
    return_outputs: bool = False,
) -> dict[str, float] | tuple[dict[str, float], np.ndarray]:
    """Speaker verification as in CTAL's Sec. 4.4: the validation metrics of the classifier over the training
    speakers (`trainer.evaluate()`), then the equal error rate of cosine scoring over every pair of `trials`
    (utterances of speakers unseen in training), from the head's pre-classifier `embeddings`. With `return_outputs`,
    `(metrics, embeddings)`: the trials' embeddings too, one row per utterance of `trials`."""
    metrics = {k: v for k, v in trainer.evaluate().items() if isinstance(v, (int, float))}
    (embeddings,) = collect_outputs(
        trainer.model,
        processor,
        trials,
        text_column,
        lambda output, batch: (output.embeddings,),
        batch_size=trainer.args.per_device_eval_batch_size,
        audio_column=audio_column,
    )
    result = speaker_verification_eer(embeddings.numpy(), trials[speaker_column])
    metrics.update(
        test_eer=result.eer,
        test_eer_threshold=result.threshold,
        test_target_trials=result.target_trials,
        test_nontarget_trials=result.nontarget_trials,
    )
    return (metrics, embeddings.numpy()) if return_outputs else metrics
