#!/usr/bin/env python
"""DSCLAP training-step cost, and what batch-longest padding saves a Whisper audio tower.

For each preset (its text encoder and projection; its wav2vec2 audio encoder, or with `--audio_tower whisper` a
randomly initialised Whisper encoder of OpenAI's `--whisper_shape`, tiny or base), on one random padded batch (clips
of 60-100 % of `--seconds`, transcripts of `--text_tokens`):

- `dsclap_step_s`: median wall time of a DsclapModel training step (forward, DSCLAP loss, backward);
- `bare_encoders_step_s`: median wall time of the same two encoders' forward + backward alone (masked mean pooling,
  the sum of the pooled states as a dummy loss), i.e. what any audio+text model built on them pays;
- `ratio`: the median over rounds of their quotient, the overhead of the DSCLAP head and loss (goal <= 1.15);
  `cpu_ratio` is the same from this process's CPU time, which a busy machine disturbs less;
- `audio_seconds_per_second`: real (unpadded) audio seconds in the batch / `dsclap_step_s`;
- `padding_waste`: the share of padded samples in the audio batches of one epoch over the real clip lengths of a
  built corpus (`--corpus_dir`, its `pretrain` split), with random batches vs transformers' `LengthGroupedSampler`
  (what `--train_sampling_strategy group_by_length` uses in the run scripts).

With `--audio_tower whisper`, also `whisper_padding` (once, the audio tower does not depend on the preset): pooled
audio embeddings (`get_audio_features`, inference) of `--padding_batches` random batches of `--padding_batch_size`
corpus clips (cut at the model's `max_audio_samples`, 5 s, as pre-training does), each batch padded to its longest
clip with the padding masked (audiolang), and padded to 30 s as transformers' `WhisperEncoder` requires: `speedup`
is the median over rounds and batches of the 30 s time over the batch-longest time, `clips_per_second` the
throughput of each.

The two kinds of step alternate (ABBA order), after `--warmup` unmeasured rounds, so that drifts in machine load hit
both; `load_average_1min` records how busy the machine was.

    python benchmarks/bench_dsclap.py [--presets tiny paper] [--repeats 5]
    python benchmarks/bench_dsclap.py --audio_tower whisper --whisper_shape base --presets paper
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from transformers import WhisperConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Recorder, median_ratio, paired_timings  # noqa: E402

from audiolang import DsclapConfig, DsclapModel, masked_mean_pool  # noqa: E402

SAMPLING_RATE = 16_000
# Whisper's log-mel features: one frame per 10 ms, 80 mel bins, at most 30 s.
MEL_FRAMES_PER_SECOND = 100
MEL_BINS = 80
WHISPER_MAX_FRAMES = 3000
GOAL_RATIO = 1.15

# The encoders of OpenAI's Whisper tiny and base (width, layers, heads, feed-forward width).
WHISPER_SHAPES: dict[str, dict[str, int]] = {
    "tiny": {"d_model": 384, "encoder_layers": 4, "encoder_attention_heads": 6, "encoder_ffn_dim": 1536},
    "base": {"d_model": 512, "encoder_layers": 6, "encoder_attention_heads": 8, "encoder_ffn_dim": 2048},
}


def make_batch(
    batch_size: int,
    seconds: float,
    text_tokens: int,
    vocab_size: int,
    seed: int,
    mel_bins: int | None = None,
) -> dict[str, torch.Tensor]:
    """Random waveforms (`input_values`), or with `mel_bins` random log-mel spectrograms (`input_features`), of
    60-100 % of `seconds`, and random transcripts."""
    generator = torch.Generator().manual_seed(seed)
    max_steps = int(seconds * (SAMPLING_RATE if mel_bins is None else MEL_FRAMES_PER_SECOND))
    lengths = (max_steps * (0.6 + 0.4 * torch.rand(batch_size, generator=generator))).long()
    lengths[0] = max_steps
    audio_mask = (torch.arange(max_steps)[None, :] < lengths[:, None]).long()
    if mel_bins is None:
        audio = {"input_values": torch.randn(batch_size, max_steps, generator=generator) * audio_mask}
    else:
        features = torch.randn(batch_size, mel_bins, max_steps, generator=generator)
        audio = {"input_features": features * audio_mask[:, None, :]}
    return {
        **audio,
        "audio_attention_mask": audio_mask,
        "input_ids": torch.randint(1000, vocab_size, (batch_size, text_tokens), generator=generator),
        "attention_mask": torch.ones(batch_size, text_tokens, dtype=torch.long),
    }


def batch_audio_seconds(batch: dict[str, torch.Tensor]) -> float:
    """Real (unpadded) audio seconds in a batch of waveforms or spectrograms."""
    steps_per_second = MEL_FRAMES_PER_SECOND if "input_features" in batch else SAMPLING_RATE
    return batch["audio_attention_mask"].sum().item() / steps_per_second


def build_model(preset: str, audio_tower: str, whisper_shape: str) -> DsclapModel:
    """A randomly initialised DSCLAP model of `preset`, its audio encoder replaced by a Whisper encoder of
    `whisper_shape` for `audio_tower="whisper"`."""
    torch.manual_seed(0)
    config = DsclapConfig.from_preset(preset)
    if audio_tower == "whisper":
        whisper = WhisperConfig(num_mel_bins=MEL_BINS, **WHISPER_SHAPES[whisper_shape])
        config = DsclapConfig.from_audio_text_configs(whisper, config.text_config, preset=preset)
    return DsclapModel(config)


def dsclap_step(model: DsclapModel, batch: dict[str, torch.Tensor]) -> None:
    model(**batch).loss.backward()


def bare_encoders_step(model: DsclapModel, batch: dict[str, torch.Tensor]) -> None:
    audio_input = model.audio_model.main_input_name
    audio = model.audio_model(
        **{audio_input: batch[audio_input]}, attention_mask=batch["audio_attention_mask"]
    )
    frame_mask = model.audio_model._get_feature_vector_attention_mask(
        audio.last_hidden_state.shape[1], batch["audio_attention_mask"]
    )
    text = model.text_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    pooled_audio = masked_mean_pool(audio.last_hidden_state, frame_mask)
    pooled_text = masked_mean_pool(text.last_hidden_state, batch["attention_mask"])
    (pooled_audio.sum() + pooled_text.sum()).backward()


def measure(
    model: DsclapModel,
    preset: str,
    batch_size: int,
    seconds: float,
    text_tokens: int,
    warmup: int,
    repeats: int,
) -> dict:
    model.train()
    mel_bins = model.config.audio_config.num_mel_bins if model.main_input_name == "input_features" else None
    batch = make_batch(batch_size, seconds, text_tokens, model.config.text_config.vocab_size, 0, mel_bins)

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
    audio_seconds = batch_audio_seconds(batch)
    return {
        "preset": preset,
        "audio_encoder": model.config.audio_config.model_type,
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


@torch.no_grad()
def whisper_padding_speedup(
    model: DsclapModel,
    clip_seconds: list[float],
    batch_size: int,
    batches: int,
    warmup: int,
    repeats: int,
    seed: int = 0,
) -> dict:
    """Pooled audio embeddings of random batches of clips with the given durations (cut at the model's
    `max_audio_samples`, as the training collator does): padded to the batch's longest clip (the padding masked) vs
    padded to 30 s without a mask (what transformers' `WhisperEncoder` takes)."""
    model.eval()
    max_frames = min(
        model.config.max_audio_samples * MEL_FRAMES_PER_SECOND // SAMPLING_RATE, WHISPER_MAX_FRAMES
    )
    generator = torch.Generator().manual_seed(seed)
    ratios, longest_times, padded_times, longest_frames = [], [], [], []
    for _ in range(batches):
        rows = torch.randint(len(clip_seconds), (batch_size,), generator=generator).tolist()
        frames = [min(int(clip_seconds[row] * MEL_FRAMES_PER_SECOND), max_frames) for row in rows]
        longest = max(frames)
        mask = (torch.arange(longest)[None, :] < torch.tensor(frames)[:, None]).long()
        features = torch.randn(batch_size, MEL_BINS, longest, generator=generator) * mask[:, None, :]
        padded = torch.nn.functional.pad(features, (0, WHISPER_MAX_FRAMES - longest))
        timings = paired_timings(
            {
                "longest": partial(
                    model.get_audio_features, input_features=features, audio_attention_mask=mask
                ),
                "padded_30s": partial(model.get_audio_features, input_features=padded),
            },
            warmup,
            repeats,
        )["wall"]
        ratios.append(median_ratio(timings["padded_30s"], timings["longest"]))
        longest_times += timings["longest"]
        padded_times += timings["padded_30s"]
        longest_frames.append(longest)
    return {
        "clips": len(clip_seconds),
        "batch_size": batch_size,
        "batches": batches,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "mean_clip_seconds": round(statistics.fmean(clip_seconds), 3),
        "batch_longest_seconds": [frames / MEL_FRAMES_PER_SECOND for frames in longest_frames],
        "longest_s": round(statistics.median(longest_times), 4),
        "padded_30s_s": round(statistics.median(padded_times), 4),
        "speedup": round(statistics.median(ratios), 3),
        "clips_per_second_longest": round(batch_size / statistics.median(longest_times), 2),
        "clips_per_second_padded_30s": round(batch_size / statistics.median(padded_times), 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
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
    parser.add_argument(
        "--audio_tower",
        default="wav2vec2",
        choices=["wav2vec2", "whisper"],
        help="the presets' wav2vec2 encoder, or a Whisper encoder of --whisper_shape (random weights)",
    )
    parser.add_argument("--whisper_shape", default="base", choices=sorted(WHISPER_SHAPES))
    parser.add_argument("--padding_batch_size", type=int, default=8, help="whisper: clips per padding batch")
    parser.add_argument("--padding_batches", type=int, default=2, help="whisper: random batches to time")
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
    whisper = args.audio_tower == "whisper"
    recorder = Recorder(f"bench_dsclap_whisper_{args.whisper_shape}" if whisper else "bench_dsclap")
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
        model = build_model(preset, args.audio_tower, args.whisper_shape)
        result = measure(
            model, preset, batch_sizes[preset], args.seconds, args.text_tokens, args.warmup, args.repeats
        )
        recorder.record(
            metric="training_step", whisper_shape=args.whisper_shape if whisper else None, **result
        )
    if whisper:
        result = whisper_padding_speedup(
            model,
            [length / SAMPLING_RATE for length in lengths],
            args.padding_batch_size,
            args.padding_batches,
            args.warmup,
            args.repeats,
        )
        recorder.record(metric="whisper_padding", whisper_shape=args.whisper_shape, corpus=source, **result)


if __name__ == "__main__":
    main()
