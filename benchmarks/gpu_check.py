#!/usr/bin/env python
"""A GPU check in one command, for whoever has a CUDA GPU for a few minutes (under 8 on one GPU):

    python benchmarks/gpu_check.py            # writes benchmarks/results/gpu_check.jsonl

1. `mixed_precision`: one training step of every family's pre-training and fine-tuning model (`small` presets) in
   bf16 and in fp16 autocast (fp16 with a gradient scaler, as Trainer does): loss and gradients finite, weights fp32.
2. `attention`: a DSCLAP pre-training step at the paper's sizes with each attention implementation available
   (eager, sdpa, flash_attention_2 where `flash_attn` is installed): step time, and the loss against eager's.
3. `accelerate_launch`: `run_pretrain.py --model_type dsclap --bf16 true` under `accelerate launch` on every visible
   GPU, on a synthetic dataset and a small randomly initialised text encoder built here (nothing is downloaded).
4. `mfu`: DSCLAP pre-training at the paper's sizes (wav2vec2-base audio tower, TinyBERT-4 text tower; `paper`
   preset) in bf16: clips and audio seconds per second, and model FLOPs utilisation, the analytical training FLOPs
   of a step (`dsclap_training_flops`) over its time and the GPU's peak dense bf16 rate (`PEAK_BF16_TFLOPS`, or
   `--peak_tflops`). Issue 22's target: MFU >= 40%.

Without CUDA it stops at once with a message (exit status 2); the FLOP count is tested on the CPU
(tests/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Recorder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLING_RATE = 16_000
NO_CUDA_MESSAGE = (
    "gpu_check needs a CUDA GPU, and torch sees none (torch.cuda.is_available() is False): run it on a machine with "
    "an NVIDIA GPU and a CUDA build of torch. On the CPU, mixed precision, accelerate launch and gradient caching are "
    "checked by the test suite (docs/training-at-scale.md)."
)
# Peak dense bf16 tensor-core rate, TFLOP/s, by device name (first match wins; NVIDIA data sheets, SXM unless named).
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("GH200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
    ("RTX 4090", 165.0),
)


def conv_output_length(length: int, kernel: int, stride: int) -> int:
    return (length - kernel) // stride + 1


def transformer_layer_flops(tokens: int, width: int, ffn: int) -> int:
    """Forward matmul FLOPs of one encoder layer over `tokens` positions: Q, K, V and output projections
    (4 x 2 T d^2), attention scores and their weighted sum (2 x 2 T^2 d), feed-forward (2 x 2 T d f)."""
    return 8 * tokens * width**2 + 4 * tokens**2 * width + 4 * tokens * width * ffn


def dsclap_forward_flops(
    config: Any, batch_size: int, audio_samples: int, text_tokens: int
) -> tuple[int, int]:
    """(forward FLOPs, FLOPs of the first convolution alone) of a DSCLAP model with a wav2vec2-style audio tower and
    a BERT-style text tower on `batch_size` unpadded clips of `audio_samples` samples and transcripts of
    `text_tokens` tokens.

    Counted: the matrix multiplications and convolutions (2 FLOPs per multiply-add) of the convolutional feature
    encoder, the feature projection, the convolutional position embedding (its `k // 2` padding makes `frames + 1`
    outputs for an even kernel, the last one dropped), every transformer layer of both towers (the text tower is built without BERT's
    pooler), both projections and the three `batch x batch` similarity products (the logits of the output and the two of the loss);
    norms, activations and softmax are left out, as MFU conventionally does."""
    audio, text = config.audio_config, config.text_config
    length, channels, conv_flops, first_conv = audio_samples, 1, 0, 0
    for out_channels, kernel, stride in zip(
        audio.conv_dim, audio.conv_kernel, audio.conv_stride, strict=True
    ):
        length = conv_output_length(length, kernel, stride)
        layer = 2 * channels * kernel * out_channels * length
        first_conv = first_conv or layer
        conv_flops += layer
        channels = out_channels
    frames, width, kernel = length, audio.hidden_size, audio.num_conv_pos_embeddings
    position_frames = frames + 2 * (kernel // 2) - kernel + 1
    audio_flops = (
        conv_flops
        + 2 * frames * channels * width  # feature projection
        + 2 * position_frames * width * (width // audio.num_conv_pos_embedding_groups) * kernel
        + audio.num_hidden_layers * transformer_layer_flops(frames, width, audio.intermediate_size)
    )
    text_flops = text.num_hidden_layers * transformer_layer_flops(
        text_tokens, text.hidden_size, text.intermediate_size
    )
    projections = 2 * config.projection_dim * (width + text.hidden_size)
    similarities = 3 * 2 * batch_size**2 * config.projection_dim
    return batch_size * (audio_flops + text_flops + projections) + similarities, batch_size * first_conv


def dsclap_training_flops(config: Any, batch_size: int, audio_samples: int, text_tokens: int) -> int:
    """FLOPs of one DSCLAP training step (forward and backward), for MFU: backward costs twice the forward (the
    gradients of each layer's input and of its weights), except for the first convolution, whose input (the
    waveform) needs no gradient. (`torch.utils.flop_counter.FlopCounterMode` counts a strided convolution's input
    gradient as a transposed convolution over the longer input, so it reports more for the convolutions.)"""
    forward, first_conv = dsclap_forward_flops(config, batch_size, audio_samples, text_tokens)
    return 3 * forward - first_conv


def peak_bf16_flops(device_name: str, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    return next((tflops * 1e12 for name, tflops in PEAK_BF16_TFLOPS if name in device_name), None)


def dual_encoder_batch(
    batch_size: int, samples: int, tokens: int, device: str, labels: int | None = None
) -> dict:
    import torch

    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(samples // 2, samples + 1, (batch_size,), generator=generator)
    mask = (torch.arange(samples)[None, :] < lengths[:, None]).long()
    batch = {
        "input_values": torch.randn(batch_size, samples, generator=generator) * mask,
        "audio_attention_mask": mask,
        "input_ids": torch.randint(5, 1000, (batch_size, tokens), generator=generator),
        "attention_mask": torch.ones(batch_size, tokens, dtype=torch.long),
    }
    if labels:
        batch["labels"] = torch.randint(labels, (batch_size,), generator=generator)
    return {k: v.to(device) for k, v in batch.items()}


def frames_batch(batch_size: int, frames: int, tokens: int, vocab: int, device: str) -> dict:
    import torch

    generator = torch.Generator().manual_seed(0)
    return {
        "input_ids": torch.randint(5, vocab, (batch_size, tokens), generator=generator).to(device),
        "attention_mask": torch.ones(batch_size, tokens, dtype=torch.long, device=device),
        "input_features": torch.randn(batch_size, frames, 160, generator=generator).to(device),
        "audio_attention_mask": torch.ones(batch_size, frames, dtype=torch.long, device=device),
    }


def family_steps(device: str) -> dict[str, Callable[[], tuple[Any, dict]]]:
    """`name: () -> (model, batch)` for each family's pre-training and fine-tuning step at `small` sizes."""
    import torch

    from audiolang import (
        CtalConfig,
        CtalForPreTraining,
        CtalForSequenceClassification,
        DsclapConfig,
        DsclapForSequenceClassification,
        DsclapModel,
        LratConfig,
        LratForPreTraining,
        LratForSequenceClassification,
        TurboConfig,
        TurboForSequenceClassification,
        TurboModel,
    )

    dual = dual_encoder_batch(16, 2 * SAMPLING_RATE, 16, device)
    labelled = dual_encoder_batch(16, 2 * SAMPLING_RATE, 16, device, labels=4)

    def masked(config: Any, **targets: Any) -> dict:
        batch = frames_batch(16, 200, 16, config.vocab_size, device)
        labels = batch["input_ids"].clone()
        labels[:, ::2] = -100
        mask = torch.zeros_like(batch["audio_attention_mask"], dtype=torch.bool)
        mask[:, 10:40] = True
        return {
            **batch,
            "labels": labels,
            "audio_labels": batch["input_features"].clone(),
            "audio_labels_mask": mask,
            **targets,
        }

    def lrat_targets(config: Any) -> dict:
        batch = masked(config)
        return {
            **batch,
            **{f"idae_{k}": batch[k] for k in ("input_ids", "attention_mask", "labels", "input_features")},
            "idae_audio_attention_mask": batch["audio_attention_mask"],
            "idae_audio_labels": batch["audio_labels"],
            "idae_audio_labels_mask": batch["audio_labels_mask"],
        }

    ctal, lrat = (
        CtalConfig.from_preset("small", vocab_size=1000),
        LratConfig.from_preset("small", vocab_size=1000),
    )
    cls_labels = {"labels": torch.randint(4, (16,), device=device)}
    return {
        "dsclap-pretrain": lambda: (DsclapModel(DsclapConfig.from_preset("small")), dual),
        "dsclap-finetune": lambda: (
            DsclapForSequenceClassification(DsclapConfig.from_preset("small", num_labels=4)),
            labelled,
        ),
        "turbo-pretrain": lambda: (
            TurboModel(TurboConfig.from_preset("small")),
            {**dual, "return_loss": True},
        ),
        "turbo-finetune": lambda: (
            TurboForSequenceClassification(TurboConfig.from_preset("small", num_labels=4)),
            labelled,
        ),
        "ctal-pretrain": lambda: (CtalForPreTraining(ctal), masked(ctal)),
        "ctal-finetune": lambda: (
            CtalForSequenceClassification(CtalConfig.from_preset("small", vocab_size=1000, num_labels=4)),
            {**frames_batch(16, 200, 16, 1000, device), **cls_labels},
        ),
        "lrat-pretrain": lambda: (LratForPreTraining(lrat), lrat_targets(lrat)),
        "lrat-finetune": lambda: (
            LratForSequenceClassification(LratConfig.from_preset("small", vocab_size=1000, num_labels=4)),
            {**frames_batch(16, 200, 16, 1000, device), **cls_labels},
        ),
    }


def timed_steps(model: Any, batch: dict, dtype: Any, steps: int, warmup: int) -> tuple[float, float]:
    """(loss of the last step, median seconds per step) of forward + backward under CUDA autocast."""
    import torch

    times, loss = [], math.nan
    for index in range(warmup + steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=dtype):
            out = model(**batch)
        out.loss.backward()
        model.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if index >= warmup:
            times.append(time.perf_counter() - start)
        loss = out.loss.item()
    return loss, sorted(times)[len(times) // 2]


def check_mixed_precision(recorder: Recorder) -> None:
    import torch

    for name, build in family_steps("cuda").items():
        for dtype_name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
            torch.manual_seed(0)
            model, batch = build()
            model = model.cuda().train()
            scaler = torch.amp.GradScaler("cuda", enabled=dtype is torch.float16)
            start = time.perf_counter()
            with torch.autocast("cuda", dtype=dtype):
                loss = model(**batch).loss
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer := torch.optim.AdamW(model.parameters(), lr=1e-4))
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            finite = bool(torch.isfinite(torch.stack([g.float().norm() for g in grads])).all())
            scaler.step(optimizer)
            scaler.update()
            torch.cuda.synchronize()
            recorder.record(
                part="mixed_precision",
                step=name,
                dtype=dtype_name,
                loss=loss.item(),
                loss_finite=bool(torch.isfinite(loss)),
                gradients_finite=finite,
                weights_fp32=all(p.dtype == torch.float32 for p in model.parameters()),
                step_s=time.perf_counter() - start,
            )
            del model, optimizer
            torch.cuda.empty_cache()


def paper_dsclap(attention: str) -> Any:
    from audiolang import DsclapConfig, DsclapModel

    config = DsclapConfig.from_preset("paper")
    config.audio_config._attn_implementation = attention
    config.text_config._attn_implementation = attention
    return DsclapModel(config).cuda().train()


def check_attention(recorder: Recorder, args: argparse.Namespace) -> None:
    import importlib.util

    import torch

    batch = dual_encoder_batch(args.batch_size, int(args.seconds * SAMPLING_RATE), args.text_tokens, "cuda")
    reference = None
    for attention in ("eager", "sdpa", "flash_attention_2"):
        if attention == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
            recorder.record(
                part="attention", attention=attention, available=False, reason="flash_attn not installed"
            )
            continue
        torch.manual_seed(0)
        try:
            model = paper_dsclap(attention)
            loss, seconds = timed_steps(model, batch, torch.bfloat16, steps=3, warmup=1)
        except (ValueError, ImportError, RuntimeError) as error:
            recorder.record(part="attention", attention=attention, available=False, reason=str(error)[:300])
            continue
        reference = loss if reference is None else reference
        recorder.record(
            part="attention", attention=attention, available=True, loss=loss, loss_minus_eager=loss - reference,
            step_s=seconds,
        )  # fmt: skip
        del model
        torch.cuda.empty_cache()


def synthetic_pretraining_inputs(folder: Path) -> tuple[Path, Path]:
    """A 64-row dataset of 1-2 s noise clips with transcripts, and a 2-layer BERT text encoder with a word-level
    tokenizer over their words: `run_pretrain.py` runs on them without any download."""
    import numpy as np
    import torch
    from datasets import Audio, Dataset, DatasetDict
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = [
        "navigate",
        "home",
        "play",
        "some",
        "music",
        "open",
        "close",
        "the",
        "window",
        "call",
        "mom",
        "turn",
        "on",
        "off",
        "radio",
        "volume",
        "up",
        "down",
    ]
    rng = np.random.default_rng(0)
    rows = {"audio": [], "asr_text": []}
    for _ in range(64):
        rows["audio"].append(
            {"array": 0.1 * rng.standard_normal(int(rng.integers(16_000, 32_000))), "sampling_rate": 16_000}
        )
        rows["asr_text"].append(" ".join(rng.choice(words, size=int(rng.integers(2, 7)))))
    data = Dataset.from_dict(rows).cast_column("audio", Audio(sampling_rate=SAMPLING_RATE))
    DatasetDict({"pretrain": data}).save_to_disk(str(folder / "data"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(words)]
    text = folder / "text"
    BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}).save_pretrained(text)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=512)).save_pretrained(text)  # fmt: skip
    return folder / "data", text


def check_accelerate_launch(recorder: Recorder) -> None:
    import torch

    gpus = torch.cuda.device_count()
    with tempfile.TemporaryDirectory() as tmp:
        data, text = synthetic_pretraining_inputs(Path(tmp))
        launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(gpus)]
        if gpus > 1:
            launcher.insert(3, "--multi_gpu")
        command = [
            *launcher, "--mixed_precision", "bf16", str(ROOT / "run_scripts" / "run_pretrain.py"),
            "--model_type", "dsclap", "--preset", "small", "--text_model_name_or_path", str(text),
            "--dataset_path", str(data), "--validation_split", "", "--per_device_train_batch_size", "8",
            "--max_steps", "6", "--bf16", "true", "--save_strategy", "no", "--report_to", "none",
            "--output_dir", str(Path(tmp) / "out"), "--disable_tqdm", "true",
        ]  # fmt: skip
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=240)
        results_file = Path(tmp) / "out" / "pretrain_results.json"
        results = json.loads(results_file.read_text()) if results_file.is_file() else {}
        recorder.record(
            part="accelerate_launch",
            processes=gpus,
            returncode=proc.returncode,
            wall_s=time.perf_counter() - start,
            train_loss=results.get("train_loss"),
            train_steps=results.get("train_steps"),
            stderr_tail=None if proc.returncode == 0 else proc.stderr[-2000:],
        )


def check_mfu(recorder: Recorder, args: argparse.Namespace) -> None:
    import torch

    samples = int(args.seconds * SAMPLING_RATE)
    batch = dual_encoder_batch(args.batch_size, samples, args.text_tokens, "cuda")
    batch["audio_attention_mask"].fill_(1)  # full clips: the FLOP count assumes every sample is real
    batch["input_values"] = torch.randn_like(batch["input_values"])
    torch.manual_seed(0)
    model = paper_dsclap("sdpa")
    flops = dsclap_training_flops(model.config, args.batch_size, samples, args.text_tokens)
    loss, seconds = timed_steps(model, batch, torch.bfloat16, steps=args.steps, warmup=3)
    name = torch.cuda.get_device_name()
    peak = peak_bf16_flops(name, args.peak_tflops)
    recorder.record(
        part="mfu",
        device=name,
        preset="paper",
        batch_size=args.batch_size,
        seconds=args.seconds,
        text_tokens=args.text_tokens,
        loss=loss,
        step_s=seconds,
        clips_per_s=args.batch_size / seconds,
        audio_seconds_per_s=args.batch_size * args.seconds / seconds,
        training_tflops_per_step=flops / 1e12,
        achieved_tflops=flops / seconds / 1e12,
        peak_bf16_tflops=None if peak is None else peak / 1e12,
        mfu=None if peak is None else flops / seconds / peak,
        max_memory_gib=torch.cuda.max_memory_allocated() / 2**30,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--batch_size", type=int, default=64, help="DSCLAP clips per step at the paper's sizes"
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="clip length (the model's 80,000-sample limit)"
    )
    parser.add_argument("--text_tokens", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed MFU steps, after 3 of warm-up")
    parser.add_argument("--peak_tflops", type=float, default=None, help="the GPU's peak dense bf16 TFLOP/s")
    parser.add_argument(
        "--parts", nargs="+", default=["mixed_precision", "attention", "accelerate_launch", "mfu"]
    )
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(NO_CUDA_MESSAGE, file=sys.stderr)
        raise SystemExit(2)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    recorder = Recorder("gpu_check")
    recorder.record(
        part="device",
        device=torch.cuda.get_device_name(),
        gpus=torch.cuda.device_count(),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        bf16_supported=torch.cuda.is_bf16_supported(),
    )
    checks = {
        "mixed_precision": lambda: check_mixed_precision(recorder),
        "attention": lambda: check_attention(recorder, args),
        "accelerate_launch": lambda: check_accelerate_launch(recorder),
        "mfu": lambda: check_mfu(recorder, args),
    }
    start = time.perf_counter()
    for part in args.parts:
        checks[part]()
    recorder.record(part="total", wall_s=time.perf_counter() - start)


if __name__ == "__main__":
    main()
