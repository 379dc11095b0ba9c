#!/usr/bin/env python
"""DSCLAP training-step cost.

For each preset, on one random padded batch (clips of 60-100 % of `--seconds`, transcripts of `--text_tokens`):

- `dsclap_step_s`: median wall time of a DsclapModel training step (forward, DSCLAP loss, backward);
- `bare_encoders_step_s`: median wall time of the same two encoders' forward + backward alone (masked mean pooling,
  the sum of the pooled states as a dummy loss), i.e. what any audio+text model built on them pays;
- `ratio`: the median over rounds of their quotient, the overhead of the DSCLAP head and loss (goal <= 1.15);
  `cpu_ratio` is the same from this process's CPU time, which a busy machine disturbs less;
- `audio_seconds_per_second`: real (unpadded) audio seconds in the batch / `dsclap_step_s`;
- `padding_waste`: the share of padded samples in the audio batches of one epoch over the real clip lengths of a
  built corpus (`--corpus_dir`, its `pretrain` split), with random batches vs transformers' `LengthGroupedSampler`
  (what `--train_sampling_strategy group_by_length` uses in the run scripts).

The two kinds of step alternate (ABBA order), after `--warmup` unmeasured rounds, so that drifts in machine load hit
both; `load_average_1min` records how busy the machine was.

    python benchmarks/bench_dsclap.py [--presets tiny paper] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Recorder, median_ratio, paired_timings  # noqa: E402

from audiolang import DsclapConfig, DsclapModel, masked_mean_pool  # noqa: E402

SAMPLING_RATE = 16_000
GOAL_RATIO = 1.15


def make_batch(
    batch_size: int, seconds: float, text_tokens: int, vocab_size: int, seed: int
) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    max_samples = int(seconds * SAMPLING_RATE)
    lengths = (max_samples * (0.6 + 0.4 * torch.rand(batch_size, generator=generator))).long()
    lengths[0] = max_samples
    audio_mask = (torch.arange(max_samples)[None, :] < lengths[:, None]).long()
    return {
        "input_values": torch.randn(batch_size, max_samples, generator=generator) * audio_mask,
        "audio_attention_mask": audio_mask,
        "input_ids": torch.randint(1000, vocab_size, (batch_size, text_tokens), generator=generator),
        "attention_mask": torch.ones(batch_size, text_tokens, dtype=torch.long),
    }


def dsclap_step(model: DsclapModel, batch: dict[str, torch.Tensor]) -> None:
    model(**batch).loss.backward()


def bare_encoders_step(model: DsclapModel, batch: dict[str, torch.Tensor]) -> None:
    audio = model.audio_model(
        input_values=batch["input_values"], attention_mask=batch["audio_attention_mask"]
    )
    frame_mask = model.audio_model._get_feature_vector_attention_mask(
        audio.last_hidden_state.shape[1], batch["audio_attention_mask"]
    )
    text = model.text_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    pooled_audio = masked_mean_pool(audio.last_hidden_state, frame_mask)
    pooled_text = masked_mean_pool(text.last_hidden_state, batch["attention_mask"])
    (pooled_audio.sum() + pooled_text.sum()).backward()


def measure(
    preset: str, batch_size: int, seconds: float, text_tokens: int, warmup: int, repeats: int
) -> dict:
    torch.manual_seed(0)
    config = DsclapConfig.from_preset(preset)
    model = DsclapModel(config).train()
    batch = make_batch(batch_size, seconds, text_tokens, config.text_config.vocab_size, seed=0)

    def step(function: Callable[[DsclapModel, dict[str, torch.Tensor]], None]) -> Callable[[], None]:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            function(model, batch)

        return run

    timings = paired_timings({"dsclap": step(dsclap_step), "bare": step(bare_encoders_step)}, warmup, repeats)
    wall, cpu = timings["wall"], timings["cpu"]
    dsclap_median = statistics.median(wall["dsclap"])
    bare_median = statistics.median(wall["bare"])
    # CPU time, which excludes the time spent waiting for a core, is steadier than wall time on a busy machine.
    ratio = median_ratio(wall["dsclap"], wall["bare"])
    cpu_ratio = median_ratio(cpu["dsclap"], cpu["bare"])
    audio_seconds = batch["audio_attention_mask"].sum().item() / SAMPLING_RATE
    return {
        "preset": preset,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch_size": batch_size,
        "max_audio_seconds": seconds,
        "text_tokens": text_tokens,
        "batch_audio_seconds": round(audio_seconds, 3),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "dsclap_step_s": round(dsclap_median, 4),
        "bare_encoders_step_s": round(bare_median, 4),
        "dsclap_step_cpu_s": round(statistics.median(cpu["dsclap"]), 4),
        "bare_encoders_step_cpu_s": round(statistics.median(cpu["bare"]), 4),
        "ratio": round(ratio, 4),
        "cpu_ratio": round(cpu_ratio, 4),
        "goal_ratio": GOAL_RATIO,
        "meets_goal": ratio <= GOAL_RATIO,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "audio_seconds_per_second": round(audio_seconds / dsclap_median, 3),
    }


def padding_waste(lengths: list[int], batch_size: int, grouped: bool, seed: int = 0) -> float:
    """Padded share of the audio samples of one epoch's batches (each batch padded to its longest clip)."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    generator = torch.Generator().manual_seed(seed)
    if grouped:
        order = list(LengthGroupedSampler(batch_size, lengths=lengths, generator=generator))
    else:
        order = torch.randperm(len(lengths), generator=generator).tolist()
    real = padded = 0
    for start in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[start : start + batch_size]]
        real += sum(batch)
        padded += max(batch) * len(batch)
    return 1.0 - real / padded


def corpus_lengths(corpus_dir: str | None) -> tuple[list[int], str]:
    """Clip lengths (samples) of a built corpus' pretrain split; the tiny corpus is built if none is given."""
    import tempfile

    from audiolang.data import build_corpus, load_corpus

    if corpus_dir and Path(corpus_dir).exists():
        split = load_corpus(corpus_dir)["pretrain"]
        source = corpus_dir
    else:
        split = build_corpus("tiny", output_dir=Path(tempfile.mkdtemp()) / "tiny", progress=False)["pretrain"]
        source = "tiny corpus"
    return [round(d * SAMPLING_RATE) for d in split["duration"]], source


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"], choices=["tiny", "small", "paper"])
    parser.add_argument("--tiny_batch_size", type=int, default=32)
    parser.add_argument("--paper_batch_size", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0, help="longest clip of the batch")
    parser.add_argument("--text_tokens", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--corpus_dir", default="out/corpus-default-seed0", help="corpus for the padding measurement"
    )
    args = parser.parse_args()
    recorder = Recorder("bench_dsclap")
    lengths, source = corpus_lengths(args.corpus_dir)
    for grouped in (False, True):
        recorder.record(
            metric="padding_waste",
            sampler="group_by_length" if grouped else "random",
            value=round(padding_waste(lengths, args.tiny_batch_size, grouped), 4),
            batch_size=args.tiny_batch_size,
            clips=len(lengths),
            corpus=source,
        )
    batch_sizes = {
        "tiny": args.tiny_batch_size,
        "small": args.tiny_batch_size,
        "paper": args.paper_batch_size,
    }
    for preset in args.presets:
        result = measure(
            preset, batch_sizes[preset], args.seconds, args.text_tokens, args.warmup, args.repeats
        )
        recorder.record(metric="training_step", **result)


if __name__ == "__main__":
    main()
