"""A Trainer with per-submodule learning rates.

Dual encoders are often assembled from one pretrained tower and one randomly initialised tower (offline,
no speech encoder checkpoint exists here; the text tower starts from all-MiniLM-L6-v2). One learning rate
cannot suit both: a rate that moves the random tower (1e-3) wrecks the pretrained one within a few
steps, after which the contrastive loss collapses to its chance value; a rate gentle enough for the
pretrained tower (2e-5) leaves the random tower where it started. Measured on the embedded corpus.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer


class ModuleLearningRateTrainer(Trainer):
    """``transformers.Trainer`` whose optimizer gives the parameters under given module prefixes their own
    learning rate (e.g. ``{"text_model.": 2e-5}``); every other parameter uses ``args.learning_rate``, and so
    do prefixes whose rate is None (an unset command-line option).

    Weight decay follows Trainer's own rule (no decay for biases and norms); the scheduler scales every
    group alike. Without ``module_learning_rates`` it is exactly ``Trainer``.
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
