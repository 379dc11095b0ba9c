#!/usr/bin/env python
"""Export a fine-tuned audiolang classifier to ONNX, for onnxruntime inference on CPU.

Writes ``<output_dir>/model.onnx`` (the classifier's forward: the processor's tensors in, ``logits`` out, with
dynamic batch and length axes) and ``onnx_inputs.json``, after checking the graph against the model on shapes it
was not traced on. The pipeline runs it as its classifier:

    python run_scripts/run_export.py --model_name_or_path out/dsclap-intent --output_dir out/dsclap-intent-onnx

    from transformers import pipeline
    from audiolang.export import OnnxSequenceClassifier
    classifier = pipeline("audio-text-classification", model="out/dsclap-intent",
                          classifier=OnnxSequenceClassifier("out/dsclap-intent-onnx"))

int8 needs no export: ``audiolang.export.quantize_int8(model)`` quantises a loaded model in a second or two.
docs/fast-inference.md compares both with the float model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoModelForSequenceClassification, AutoProcessor, HfArgumentParser

import audiolang  # noqa: F401  (registers the families with the Auto classes)
from audiolang.export import export_onnx


@dataclass
class ExportArguments:
    model_name_or_path: str = field(metadata={"help": "a fine-tuned classifier folder (or hub id)"})
    output_dir: Path = field(metadata={"help": "where model.onnx and onnx_inputs.json are written"})


def main(argv: list[str] | None = None) -> Path:
    (args,) = HfArgumentParser(ExportArguments).parse_args_into_dataclasses(argv)
    model = AutoModelForSequenceClassification.from_pretrained(args.model_name_or_path)
    processor = AutoProcessor.from_pretrained(args.model_name_or_path)
    path = export_onnx(model, processor, args.output_dir)
    print(f"exported {args.model_name_or_path} to {path}")
    return path


if __name__ == "__main__":
    main()
