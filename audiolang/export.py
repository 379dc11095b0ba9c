"""Faster classifiers for CPU inference: int8 dynamic quantisation, and an ONNX export run by onnxruntime.

- `quantize_int8(model)`: `torch.ao.quantization.quantize_dynamic` on the `nn.Linear` layers (weights int8, activations
  quantised on the fly), optionally keeping the audio tower in float (`keep_audio_tower=True`), so that it stays the
  recogniser's encoder weight for weight and the pipeline's `share_encoder` pass still covers it.
- `export_onnx(model, processor, path)`: the classifier's forward (the processor's tensors in, `logits` out) as one
  ONNX graph with dynamic batch, frame and token axes; `OnnxSequenceClassifier` runs it with onnxruntime and is
  called like the model, so that the pipeline takes it as `classifier=`.

`run_scripts/run_export.py` writes both next to a fine-tuned folder; `benchmarks/bench_latency.py` checks each against
the float model on the test split and measures it. docs/fast-inference.md says what each buys.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

__all__ = ["ONNX_FILE", "OnnxSequenceClassifier", "export_onnx", "quantize_int8"]

ONNX_FILE = "model.onnx"
# The graph's input names in order, next to the graph: the runtime feeds what the processor gives under these names.
_INPUTS_FILE = "onnx_inputs.json"
# The exporter's opset: onnxruntime 1.2x runs it, and torch's dynamo exporter writes it without down-conversion.
OPSET = 18


def quantize_int8(model: nn.Module, keep_audio_tower: bool = False) -> nn.Module:
    """An int8 copy of `model` for CPU inference: its `nn.Linear` layers dynamically quantised (per-tensor int8
    weights, activations quantised per batch), in eval mode; `model` is left as it is.

    Args:
        model: A float classifier (any audiolang `*ForSequenceClassification`).
        keep_audio_tower: Leave `model.audio_model` in float: for the pipeline's `share_encoder` pass, where the
            recogniser's encoder computes the tower's states, so quantising the tower would only stop the sharing.
    """
    quantized = copy.deepcopy(model).eval()
    if keep_audio_tower:
        tower = quantized.audio_model
        quantized.audio_model = nn.Identity()  # out of quantize_dynamic's reach while it walks the model
        quantized = torch.ao.quantization.quantize_dynamic(
            quantized, {nn.Linear}, dtype=torch.qint8, inplace=True
        )
        quantized.audio_model = tower
        return quantized
    return torch.ao.quantization.quantize_dynamic(quantized, {nn.Linear}, dtype=torch.qint8, inplace=True)


class _LogitsOnly(nn.Module):
    """The classifier's forward over positional tensors (the names in `input_names`), returning only the logits."""

    def __init__(self, model: nn.Module, input_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.input_names, tensors, strict=True))).logits


def export_onnx(model: nn.Module, processor: Any, output_dir: str | os.PathLike) -> Path:
    """Export a classifier's forward to `<output_dir>/model.onnx` (with `onnx_inputs.json`, its input names).

    The graph takes what `processor(audio=..., text=..., return_tensors="pt")` returns (e.g. `input_features`,
    `audio_attention_mask`, `input_ids`, `attention_mask`, `token_type_ids`), each with dynamic batch and length axes,
    and returns `logits`. It is traced on two clips of different lengths (so that padding is in the trace) and checked
    against the model on them; a mismatch raises. Needs the `onnx` and `onnxscript` packages.

    Returns the path of `model.onnx`.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    rate = processor.feature_extractor.sampling_rate
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (rate, rate * 3 // 2)]
    sample = processor(
        audio=clips, text=["open the window", "navigate home"], sampling_rate=rate, return_tensors="pt"
    )
    input_names = list(sample.keys())
    # The first axis is the batch and the last is time (samples, mel frames or tokens) for every input the
    # processors give; the inputs of one modality (the audio and its mask, the tokens and theirs) share their length,
    # which the example's sizes tell apart (more frames than tokens).
    dynamic_axes = {
        name: {0: "batch", tensor.ndim - 1: f"length_{tensor.shape[-1]}"} for name, tensor in sample.items()
    }
    dynamic_axes["logits"] = {0: "batch"}
    path = output_dir / ONNX_FILE
    with torch.no_grad():
        # TorchScript tracing (`dynamo=False`): torch.export stops at the models' input checks, which depend on
        # the data (clip lengths); the trace runs them on the example and keeps the tensor computation.
        torch.onnx.export(
            _LogitsOnly(model, input_names).eval(),  # the exporter restores the mode it finds
            tuple(sample[name] for name in input_names),
            str(path),
            input_names=input_names,
            output_names=["logits"],
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
        )
    (output_dir / _INPUTS_FILE).write_text(json.dumps(input_names) + "\n")
    # Checked on other shapes than the trace's too (three clips, other lengths), which catches a length or batch
    # size frozen into the graph.
    check = processor(
        audio=[(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (rate // 2, rate * 2, rate)],
        text=["call mom", "turn the radio volume up please", "play music"],
        sampling_rate=rate,
        return_tensors="pt",
    )
    runtime = OnnxSequenceClassifier(path)
    for inputs in (sample, check):
        with torch.no_grad():
            expected = model(**inputs).logits
        got = runtime(**inputs).logits
        if not torch.allclose(got, expected, atol=1e-4, rtol=1e-4):
            raise ValueError(
                f"the ONNX export of {type(model).__name__} differs from the model by up to "
                f"{(got - expected).abs().max().item():.2e} on inputs of shapes "
                f"{ {k: tuple(v.shape) for k, v in inputs.items()} }: do not use {path}."
            )
    return path


class OnnxSequenceClassifier:
    """An `export_onnx` graph run by onnxruntime, called like the model: `classifier(**processor_outputs).logits`.

    Args:
        path: `model.onnx` (or the folder holding it and `onnx_inputs.json`).
        num_threads: onnxruntime's intra-op threads; None lets onnxruntime use every core.
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None) -> None:
        import onnxruntime

        path = Path(path)
        if path.is_dir():
            path = path / ONNX_FILE
        if not path.is_file():
            raise ValueError(
                f"{str(path)!r} is not an ONNX file: export the classifier first (`run_scripts/run_export.py`)."
            )
        options = onnxruntime.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self.path = path
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, **inputs: Any) -> SequenceClassifierOutput:
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise ValueError(
                f"the ONNX classifier {str(self.path)!r} takes {self.input_names}; {missing} missing: pass the "
                "processor's whole output, from the processor saved with the model."
            )
        feed = {name: _numpy(inputs[name]) for name in self.input_names}
        (logits,) = self.session.run(["logits"], feed)
        return SequenceClassifierOutput(logits=torch.from_numpy(logits))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
