"""The run scripts' Trainer: per-submodule learning rates, and the loss parts of every family as their own curves.

Dual encoders are often assembled from one pretrained tower and one randomly initialised tower (offline,
no speech encoder checkpoint exists here; the text tower starts from all-MiniLM-L6-v2). One learning rate
cannot suit both: a rate that moves the random tower (1e-3) wrecks the pretrained one within a few
steps, after which the contrastive loss collapses to its chance value; a rate gentle enough for the
pretrained tower (2e-5) leaves the random tower where it started. Measured on the embedded corpus.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from transformers import Trainer
from transformers.trainer_pt_utils import nested_gather
from transformers.trainer_utils import EvalLoopOutput

from .gradient_cache import gradient_cached_backward


class ModuleLearningRateTrainer(Trainer):
    """``transformers.Trainer`` whose optimizer gives the parameters under given module prefixes their own
    learning rate (e.g. ``{"text_model.": 2e-5}``); every other parameter uses ``args.learning_rate``, and so
    do prefixes whose rate is None (an unset command-line option).

    Weight decay follows Trainer's own rule (no decay for biases and norms); the scheduler scales every
    group alike. Without ``module_learning_rates`` it is exactly ``Trainer``. A prefix with a rate that names no
    parameter of the model raises a ``ValueError``: its rate would otherwise be silently ignored.
    """

    def __init__(
        self, *args: Any, module_learning_rates: dict[str, float | None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.module_learning_rates = {k: v for k, v in (module_learning_rates or {}).items() if v is not None}

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        if self.optimizer is not None or not self.module_learning_rates:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        names = [
            name.removeprefix("module.") for name, _ in opt_model.named_parameters()
        ]  # DDP-wrapped names
        unmatched = [
            prefix for prefix in self.module_learning_rates if not any(n.startswith(prefix) for n in names)
        ]
        if unmatched:
            modules = sorted({name.split(".")[0] for name in names})
            raise ValueError(
                f"`module_learning_rates` names {unmatched}, which match no parameter of "
                f"{type(opt_model).__name__} (whose parameters start with {modules}): its learning rate would be "
                "ignored. Name prefixes of this model's parameters, or leave the rate unset."
            )
        decay = set(self.get_decay_parameter_names(opt_model))
        groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
        for name, param in opt_model.named_parameters():
            if not param.requires_grad:
                continue
            bare = name.removeprefix("module.")  # DDP-wrapped names
            lr = next(
                (rate for prefix, rate in self.module_learning_rates.items() if bare.startswith(prefix)),
                self.args.learning_rate,
            )
            groups.setdefault((lr, self.args.weight_decay if name in decay else 0.0), []).append(param)
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        self.optimizer = optimizer_cls(
            [{"params": params, "lr": lr, "weight_decay": wd} for (lr, wd), params in groups.items()],
            **optimizer_kwargs,
        )
        return self.optimizer


class AudioTextTrainer(ModuleLearningRateTrainer):
    """The run scripts' ``Trainer``: per-module learning rates (``ModuleLearningRateTrainer``), and every loss part
    that the model's output carries logged as its own curve.

    A part is any scalar ``*_loss`` field of the output beside ``loss`` (DSCLAP's contrastive and matching terms of
    Eq. 8, CTAL's ``mlm_loss`` and ``mcam_loss``, Turbo's ``classification_loss`` and InfoNCE terms, ...), so every
    family is covered by the same code. Training logs carry each part's mean over the micro-batches of the logging
    interval (averaged across processes, like ``loss``); ``evaluate`` / ``predict`` metrics carry its mean over the
    evaluation set as ``eval_<part>`` / ``test_<part>``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loss_parts: dict[str, list[torch.Tensor]] = {}

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        loss, outputs = super().compute_loss(
            model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
        )
        self._record_loss_parts(outputs)
        return (loss, outputs) if return_outputs else loss

    def _record_loss_parts(self, outputs: Any) -> None:
        if isinstance(outputs, Mapping):
            for name, value in outputs.items():
                if name.endswith("_loss") and isinstance(value, torch.Tensor) and value.numel() == 1:
                    self._loss_parts.setdefault(name, []).append(value.detach().float().reshape(()))

    def training_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """``Trainer.training_step``, or with ``args.contrastive_micro_batch_size`` its gradient-cached version
        (``audiolang.training.gradient_cached_backward``): the loss of the whole batch, activations of a micro-batch
        at a time, the same loss scaling for gradient accumulation, fp16 loss scaling and autocast as Trainer's."""
        micro_batch_size = getattr(self.args, "contrastive_micro_batch_size", None)
        if not micro_batch_size:
            return super().training_step(model, inputs, num_items_in_batch)
        model.train()
        inputs = self._prepare_inputs(inputs)
        accumulation = self.current_gradient_accumulation_steps
        # The prepared model's forward carries accelerate's autocast, but gradient caching calls other methods.
        with self.accelerator.autocast():
            outputs = gradient_cached_backward(
                self.accelerator.unwrap_model(model),
                inputs,
                micro_batch_size,
                backward=lambda loss: self.accelerator.backward(loss / accumulation),
            )
        self._record_loss_parts(outputs)
        if self.accelerator.sync_gradients:
            _average_gradients_across_processes(model)
        return outputs.loss / accumulation

    def _mean_loss_parts(self) -> dict[str, float]:
        """Each recorded part's mean since the last call, over this process's micro-batches and then across
        processes; every process must call it (it gathers), as ``Trainer`` does with ``loss``."""
        parts, self._loss_parts = self._loss_parts, {}
        return {
            name: nested_gather(torch.stack(values).mean(), self.args.parallel_mode).mean().item()
            for name, values in sorted(parts.items())
        }

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Training logs are the ones with "loss"; evaluation adds its parts in evaluation_loop instead.
        if "loss" in logs:
            logs.update(self._mean_loss_parts())
        super().log(logs, start_time)

    def evaluation_loop(self, *args: Any, metric_key_prefix: str = "eval", **kwargs: Any) -> EvalLoopOutput:
        # Parts recorded during training since the last log must not leak into the evaluation's means.
        training_parts, self._loss_parts = self._loss_parts, {}
        output = super().evaluation_loop(*args, metric_key_prefix=metric_key_prefix, **kwargs)
        output.metrics.update({f"{metric_key_prefix}_{k}": v for k, v in self._mean_loss_parts().items()})
        self._loss_parts = training_parts
        return output


def _average_gradients_across_processes(model: torch.nn.Module) -> None:
    """What DistributedDataParallel does after backward, which gradient caching runs outside of (it calls the
    unwrapped model's methods, so DDP's hooks never fire)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for param in model.parameters():
        if param.grad is not None:
            dist.all_reduce(param.grad)
            param.grad.div_(dist.get_world_size())
