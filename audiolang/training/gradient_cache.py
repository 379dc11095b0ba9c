"""Gradient caching: a contrastive loss over a large batch at the activation memory of a small one.

GradCache (Gao, Zhang, Han and Callan, 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited
Setup", https://arxiv.org/abs/2101.06983). An InfoNCE loss couples every row of the batch with every other, so
gradient accumulation over micro-batches does not give the large-batch loss: each micro-batch would only see its own
negatives. But the loss depends on the encoders only through the embeddings, so its gradient factors as
`dL/dθ = Σ_i dL/de_i · de_i/dθ`. Three steps compute it exactly:

1. embed the whole batch without autograd graphs, one micro-batch at a time (activations of one micro-batch live at a
   time);
2. compute the loss on the embeddings of the whole batch, negatives gathered across processes as usual, and
   back-propagate it to the embeddings (`dL/de`, a `(batch, dim)` tensor per embedding) and to the parameters the loss
   uses directly (DSCLAP's temperature, Turbo's classifier);
3. re-run each micro-batch with a graph and back-propagate the cached `dL/de` rows through it.

Step 3 must reproduce step 1's embeddings exactly, so the random number generators (dropout, Turbo's two dropout
views) are captured before each micro-batch in step 1 and restored for that micro-batch in step 3, as
`torch.utils.checkpoint` does for activation recomputation; the global generator ends where step 2 left it, so a
run's random stream is the same as without caching.

A model takes part by defining two methods (`DsclapModel`, `TurboModel` and `TurboForSequenceClassification` do):

- `contrastive_embeddings(**encoder_inputs) -> tuple[Tensor, ...]`: the tensors the loss compares, one row per
  example (the first dimension is the batch);
- `contrastive_loss_from_embeddings(embeddings, **other_inputs) -> ModelOutput`: the model's own loss (the one
  implementation in `audiolang.losses`) on the embeddings of the whole batch, with the output `forward` would give.

The keyword arguments of the batch that `contrastive_embeddings` names are split into micro-batches; the others
(labels, a hard-negative generator) go to `contrastive_loss_from_embeddings` whole.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import get_device_states, set_device_states
from transformers.utils import ModelOutput

__all__ = ["gradient_cached_backward", "supports_gradient_cache"]

_EMBED = "contrastive_embeddings"
_LOSS = "contrastive_loss_from_embeddings"


def supports_gradient_cache(model: nn.Module) -> bool:
    """Whether `model` defines the two methods gradient caching needs (see the module docstring)."""
    return callable(getattr(model, _EMBED, None)) and callable(getattr(model, _LOSS, None))


@dataclass
class _RandomState:
    """The CPU generator's state and those of the accelerators holding the micro-batch, to replay dropout masks."""

    cpu: torch.Tensor
    devices: list[int]
    device_states: list[torch.Tensor]
    device_type: str

    @classmethod
    def capture(cls, tensors: list[torch.Tensor]) -> _RandomState:
        devices, states = get_device_states(*tensors)
        device_type = next((t.device.type for t in tensors if t.device.type not in ("cpu", "meta")), "cpu")
        return cls(torch.get_rng_state(), devices, states, device_type)

    @contextmanager
    def replayed(self) -> Iterator[None]:
        """Run the block with the captured states; the generators are restored afterwards."""
        with torch.random.fork_rng(devices=self.devices, device_type=self.device_type):
            torch.set_rng_state(self.cpu)
            if self.devices:
                set_device_states(self.devices, self.device_states, device_type=self.device_type)
            yield


def _micro_batches(inputs: dict[str, Any], batch_size: int, size: int) -> list[dict[str, Any]]:
    return [
        {k: v[start : start + size] if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        for start in range(0, batch_size, size)
    ]


def _split_inputs(model: nn.Module, inputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the encoder inputs `contrastive_embeddings` names, everything else for the loss)."""
    names = set(inspect.signature(getattr(model, _EMBED)).parameters)
    encoder = {k: v for k, v in inputs.items() if k in names}
    return encoder, {k: v for k, v in inputs.items() if k not in names}


def gradient_cached_backward(
    model: nn.Module,
    inputs: dict[str, Any],
    micro_batch_size: int,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
) -> ModelOutput:
    """Accumulate into `model`'s `.grad` the gradient of its contrastive loss on the whole batch `inputs`, holding
    the activations of `micro_batch_size` rows at a time; return the loss output `forward` would give.

    Args:
        model: A model with `contrastive_embeddings` / `contrastive_loss_from_embeddings` (not a DDP wrapper: the
            gradients are this process's, to be averaged across processes as data-parallel training does).
        inputs: The batch, as `forward` takes it.
        micro_batch_size: Rows per re-computed micro-batch (the last one may be smaller).
        backward: Back-propagates the loss (step 2); `accelerator.backward` under Trainer, so that fp16 loss scaling
            and gradient-accumulation scaling apply to the cached embedding gradients too.

    Autocast, if any, is the caller's: both passes run under the same context, so they compute the same embeddings.
    """
    if not supports_gradient_cache(model):
        raise ValueError(
            f"{type(model).__name__} has no gradient caching (it needs `{_EMBED}` and `{_LOSS}`): "
            "--contrastive_micro_batch_size applies to contrastive pre-training of DSCLAP and Turbo; unset it."
        )
    if micro_batch_size < 1:
        raise ValueError(f"`micro_batch_size` must be >= 1, got {micro_batch_size}.")
    encoder_inputs, loss_inputs = _split_inputs(model, inputs)
    tensors = [v for v in encoder_inputs.values() if isinstance(v, torch.Tensor)]
    if not tensors:
        raise ValueError(f"The batch has no input of `{_EMBED}` (got {sorted(inputs)}).")
    batch_size = tensors[0].shape[0]
    micro_batches = _micro_batches(encoder_inputs, batch_size, micro_batch_size)

    # Step 1: embeddings of the whole batch, no graphs; each micro-batch's random state kept for step 3.
    states, pieces = [], []
    with torch.no_grad():
        for micro in micro_batches:
            states.append(_RandomState.capture([v for v in micro.values() if isinstance(v, torch.Tensor)]))
            pieces.append(getattr(model, _EMBED)(**micro))
    embeddings = tuple(torch.cat(parts).requires_grad_() for parts in zip(*pieces, strict=True))

    # Step 2: the loss of the whole batch, back-propagated to the embeddings (and the loss's own parameters).
    output = getattr(model, _LOSS)(embeddings, **loss_inputs)
    if output.loss is None:
        raise ValueError(
            f"{type(model).__name__}.{_LOSS} returned no loss: the batch lacks what the loss needs (labels?)."
        )
    backward(output.loss)
    # An embedding the loss does not use has no gradient: it contributes nothing.
    cached = [torch.zeros_like(e) if e.grad is None else e.grad for e in embeddings]

    # Step 3: each micro-batch again, with a graph and step 1's random state, fed its rows of the cached gradients.
    start = 0
    for micro, state in zip(micro_batches, states, strict=True):
        with state.replayed():
            recomputed = getattr(model, _EMBED)(**micro)
        rows = slice(start, start + recomputed[0].shape[0])
        # Embeddings of fully frozen parts have no graph to back-propagate through.
        pairs = [(e, grad[rows]) for e, grad in zip(recomputed, cached, strict=True) if e.requires_grad]
        if pairs:
            torch.autograd.backward([e for e, _ in pairs], [grad for _, grad in pairs])
        start = rows.stop
    output.loss = output.loss.detach()
    return output
