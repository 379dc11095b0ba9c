#!/usr/bin/env python
"""CTAL benchmarks, one function per part (`--part`, or `all`).

`features`: `CtalFeatureExtractor` (one batched call, `do_normalize=False`) against the paper's recipe run clip by
clip with librosa (`melspectrogram` + `log(mel + 1e-6)` + `delta`), on the same `--clips` speech-like clips of
`--min_seconds` to `--max_seconds` (random lengths, seeded), at equal native thread counts (`--threads`: BLAS and
OpenMP pools, through threadpoolctl; the extractor itself uses one thread):

- `librosa_s`, `ctal_s`: median wall time of one pass over all clips; `*_audio_seconds_per_second`: the
  throughput, in seconds of audio per second;
- `ratio`: median over rounds of librosa / ctal wall time (goal >= 5); `cpu_ratio`: the same from this process's
  CPU time, steadier on a busy machine;
- `max_abs_diff`: the largest difference between the two outputs over every clip and feature, i.e. proof that
  they compute the same numbers.

The two alternate (ABBA order) after `--warmup` unmeasured rounds; `load_average_1min` records how busy the machine
was.

`pretrain`: `CtalForPreTraining` training steps (forward, MLM + MCAM loss, backward) on one batch of `--batch_size`
clips of the same kind, featurised by `CtalFeatureExtractor` and masked by `DataCollatorForCtalPreTraining`'s
masking, with `--text_tokens` tokens each, for each of `--presets` (default `tiny` and `base`):
`step_s` (median wall time) and `audio_seconds_per_second` (real audio in the batch / `step_s`), at the default
torch thread count.

    python benchmarks/bench_ctal.py [--part features|pretrain|all] [--clips 64] [--repeats 7] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Recorder, median_ratio, paired_timings, timed  # noqa: E402

from audiolang import CtalFeatureExtractor  # noqa: E402

SAMPLING_RATE = 16_000
GOAL_RATIO = 5.0


def speech_like_clips(count: int, min_seconds: float, max_seconds: float, seed: int) -> list[np.ndarray]:
    """Decaying harmonics of a random pitch plus noise: bands over a wide dynamic range, as in voiced speech."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(count):
        t = np.arange(int(rng.uniform(min_seconds, max_seconds) * SAMPLING_RATE)) / SAMPLING_RATE
        f0 = rng.uniform(90, 250)
        voiced = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
        clip = 0.3 * voiced * np.exp(-t * rng.uniform(0.1, 1)) + 0.01 * rng.standard_normal(len(t))
        clips.append(clip.astype(np.float32))
    return clips


def librosa_features(clip: np.ndarray) -> np.ndarray:
    """The CTAL paper's recipe for one clip: `(frames, 160)`."""
    mel = librosa.feature.melspectrogram(
        y=clip, sr=SAMPLING_RATE, n_fft=2048, hop_length=200, win_length=800, n_mels=80
    )
    log_mel = np.log(mel + 1e-6)
    return np.concatenate([log_mel, librosa.feature.delta(log_mel)]).T


def bench_features(recorder: Recorder, args: argparse.Namespace) -> None:
    clips = speech_like_clips(args.clips, args.min_seconds, args.max_seconds, args.seed)
    audio_seconds = sum(len(clip) for clip in clips) / SAMPLING_RATE
    extractor = CtalFeatureExtractor(do_normalize=False)
    batch = extractor(clips, sampling_rate=SAMPLING_RATE)
    lengths = batch["audio_attention_mask"].sum(axis=1)
    max_abs_diff = max(
        float(np.abs(batch["input_features"][row, :frames] - librosa_features(clip)).max())
        for row, (clip, frames) in enumerate(zip(clips, lengths, strict=True))
    )
    steps: dict[str, Callable[[], None]] = {
        "librosa": lambda: [librosa_features(clip) for clip in clips],
        "ctal": lambda: extractor(clips, sampling_rate=SAMPLING_RATE),
    }
    for threads in args.threads:
        with threadpool_limits(limits=threads):
            timings = paired_timings(steps, args.warmup, args.repeats)
        wall, cpu = timings["wall"], timings["cpu"]
        ratio = median_ratio(wall["librosa"], wall["ctal"])
        recorder.record(
            part="features",
            clips=args.clips,
            clip_seconds=[args.min_seconds, args.max_seconds],
            audio_seconds=round(audio_seconds, 2),
            frames=int(lengths.sum()),
            threads=threads,
            repeats=args.repeats,
            librosa_s=round(statistics.median(wall["librosa"]), 4),
            ctal_s=round(statistics.median(wall["ctal"]), 4),
            librosa_cpu_s=round(statistics.median(cpu["librosa"]), 4),
            ctal_cpu_s=round(statistics.median(cpu["ctal"]), 4),
            librosa_audio_seconds_per_second=round(audio_seconds / statistics.median(wall["librosa"]), 1),
            ctal_audio_seconds_per_second=round(audio_seconds / statistics.median(wall["ctal"]), 1),
            ratio=round(ratio, 3),
            cpu_ratio=round(median_ratio(cpu["librosa"], cpu["ctal"]), 3),
            goal_ratio=GOAL_RATIO,
            meets_goal=ratio >= GOAL_RATIO,
            max_abs_diff=max_abs_diff,
            load_average_1min=round(os.getloadavg()[0], 2),
        )


def bench_pretrain(recorder: Recorder, args: argparse.Namespace) -> None:
    import torch

    from audiolang import CtalConfig, CtalForPreTraining
    from audiolang.training import mask_audio_spans

    clips = speech_like_clips(args.batch_size, args.min_seconds, args.max_seconds, args.seed)
    features = CtalFeatureExtractor()(clips, sampling_rate=SAMPLING_RATE, return_tensors="pt")
    audio_seconds = sum(len(clip) for clip in clips) / SAMPLING_RATE
    generator = torch.Generator().manual_seed(args.seed)
    for preset in args.presets:
        torch.manual_seed(0)
        config = CtalConfig.from_preset(preset, vocab_size=args.vocab_size)
        model = CtalForPreTraining(config).train()
        masked = mask_audio_spans(
            features["input_features"], features["audio_attention_mask"], generator=generator
        )
        input_ids = torch.randint(
            5, args.vocab_size, (args.batch_size, args.text_tokens), generator=generator
        )
        labels = torch.full_like(input_ids, -100)
        labels[:, 1::7] = input_ids[:, 1::7]  # about 15% of the tokens are MLM targets
        batch = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "labels": labels,
            "input_features": masked.input_features,
            "audio_attention_mask": features["audio_attention_mask"],
            "audio_labels": masked.targets,
            "audio_labels_mask": masked.mask,
        }

        def step(model: CtalForPreTraining = model, batch: dict = batch) -> None:
            model.zero_grad(set_to_none=True)
            model(**batch).loss.backward()

        times = [timed(step)[0] for _ in range(args.warmup + args.repeats)][args.warmup :]
        step_s = statistics.median(times)
        recorder.record(
            part="pretrain",
            preset=preset,
            parameters=sum(p.numel() for p in model.parameters()),
            batch_size=args.batch_size,
            frames=int(features["audio_attention_mask"].shape[1]),
            text_tokens=args.text_tokens,
            threads=torch.get_num_threads(),
            step_s=round(step_s, 4),
            audio_seconds_per_second=round(audio_seconds / step_s, 3),
            load_average_1min=round(os.getloadavg()[0], 2),
        )


# One entry per part; `--part all` runs them in this order.
PARTS: dict[str, Callable[[Recorder, argparse.Namespace], None]] = {
    "features": bench_features,
    "pretrain": bench_pretrain,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--min_seconds", type=float, default=2.0)
    parser.add_argument("--max_seconds", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, os.cpu_count() or 1],
        help="native thread limits to run at",
    )
    parser.add_argument("--presets", nargs="+", default=["tiny", "base"], help="pretrain: CTAL presets")
    parser.add_argument("--batch_size", type=int, default=8, help="pretrain: clips per batch")
    parser.add_argument("--text_tokens", type=int, default=24, help="pretrain: tokens per transcript")
    parser.add_argument("--vocab_size", type=int, default=8000, help="pretrain: vocabulary size")
    args = parser.parse_args()
    recorder = Recorder("bench_ctal")
    for name, part in PARTS.items():
        if args.part in (name, "all"):
            part(recorder, args)


if __name__ == "__main__":
    main()
