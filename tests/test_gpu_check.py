"""benchmarks/gpu_check.py on a machine without CUDA: it stops at once with its message; its DSCLAP FLOP count (the
numerator of MFU) equals a hand computation for the tiny preset and what `FlopCounterMode` counts in a real forward
pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from audiolang import DsclapConfig, DsclapModel

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from gpu_check import (  # noqa: E402
    NO_CUDA_MESSAGE,
    dsclap_forward_flops,
    dsclap_training_flops,
    dual_encoder_batch,
    peak_bf16_flops,
)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_without_cuda_it_stops_with_its_message() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_check.py")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and NO_CUDA_MESSAGE in proc.stderr


def test_flop_count_of_the_tiny_preset_by_hand() -> None:
    """4 clips of 8000 samples, 8 tokens. Tiny: 7 convolutions of 16 channels (kernels 10,3,3,3,3,2,2, strides
    5,2,2,2,2,2,2), width 32, feed-forward 64, 2 layers per tower, position convolution of kernel 16 in 4 groups,
    projection 16."""
    config = DsclapConfig.from_preset("tiny")
    # Frames: 8000 -> 1599 -> 799 -> 399 -> 199 -> 99 -> 49 -> 24.
    convs = 2 * (1 * 10 * 16 * 1599 + 16 * 3 * 16 * (799 + 399 + 199 + 99) + 16 * 2 * 16 * (49 + 24))
    projection = 2 * 24 * 16 * 32
    position = 2 * 25 * 32 * 8 * 16  # 24 + 2*8 - 16 + 1 = 25 outputs, 32/4 = 8 input channels per group
    audio_layer = 8 * 24 * 32**2 + 4 * 24**2 * 32 + 4 * 24 * 32 * 64
    text_layer = 8 * 8 * 32**2 + 4 * 8**2 * 32 + 4 * 8 * 32 * 64
    per_row = convs + projection + position + 2 * audio_layer + 2 * text_layer + 2 * 16 * (32 + 32)
    forward = 4 * per_row + 3 * 2 * 4**2 * 16
    first_conv = 4 * 2 * 10 * 16 * 1599
    assert dsclap_forward_flops(config, 4, 8000, 8) == (forward, first_conv)
    assert dsclap_training_flops(config, 4, 8000, 8) == 3 * forward - first_conv


@pytest.mark.parametrize(
    ("preset", "batch_size", "samples", "tokens"), [("tiny", 4, 8000, 8), ("small", 3, 16000, 12)]
)
def test_flop_count_is_what_flop_counter_mode_counts(preset, batch_size, samples, tokens) -> None:
    config = DsclapConfig.from_preset(preset)
    for tower in (config.audio_config, config.text_config):
        tower._attn_implementation = "eager"  # FlopCounterMode counts the attention's matmuls as bmm
    torch.manual_seed(0)
    model = DsclapModel(config).train()
    batch = dual_encoder_batch(batch_size, samples, tokens, "cpu")
    batch["audio_attention_mask"].fill_(1)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(**batch)
    assert dsclap_forward_flops(config, batch_size, samples, tokens)[0] == counter.get_total_flops()


def test_peak_rate_by_device_name() -> None:
    assert peak_bf16_flops("NVIDIA H100 80GB HBM3", None) == 989e12
    assert peak_bf16_flops("NVIDIA H100 PCIe", None) == 756e12
    assert peak_bf16_flops("NVIDIA H100 PCIe", 500.0) == 500e12
    assert peak_bf16_flops("Some Future GPU", None) is None
