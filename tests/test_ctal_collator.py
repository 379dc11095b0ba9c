"""CTAL pre-training masking: `mask_audio_spans` (MCAM) and `DataCollatorForCtalPreTraining` (MLM + MCAM)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from tokenizers.processors import TemplateProcessing
from transformers import BatchFeature, PreTrainedTokenizerFast, Trainer, TrainingArguments

from audiolang import CtalConfig, CtalForPreTraining, CtalProcessor, train_ctal_tokenizer
from audiolang.training import DataCollatorForAudioText, DataCollatorForCtalPreTraining, mask_audio_spans

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
# A large vocabulary, so that MLM's random replacements rarely hit the original token or <mask>.
WORDS = [f"w{i}" for i in range(4000)]
FEATURE_SIZE = 160


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    """A RoBERTa-style word-level tokenizer: `<s> ... </s>`, ids 0-4 for <s>, <pad>, </s>, <unk>, <mask>."""
    vocab = {token: index for index, token in enumerate(SPECIALS + WORDS)}
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    backend.post_processor = TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        mask_token="<mask>",
    )


class FakeProcessor:
    """Stands in for `CtalProcessor`: the tokenizer for text; a clip of `n * 160` samples *is* its `n` frames."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast):
        self.tokenizer = tokenizer

    def __call__(self, audio, text, sampling_rate, truncate_audio, return_tensors) -> BatchFeature:
        frames = [torch.from_numpy(clip).view(-1, FEATURE_SIZE) for clip in audio]
        features = torch.nn.utils.rnn.pad_sequence(frames, batch_first=True)
        lengths = torch.tensor([len(f) for f in frames])
        mask = (torch.arange(features.shape[1])[None, :] < lengths[:, None]).int()
        encoded = self.tokenizer(text, padding=True, return_tensors="pt")
        return BatchFeature({**encoded, "input_features": features, "audio_attention_mask": mask})


def make_rows(num_rows: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(num_rows):
        frames = int(rng.integers(30, 400))
        words = rng.choice(WORDS, size=int(rng.integers(3, 25)))
        clip = rng.standard_normal(frames * FEATURE_SIZE).astype(np.float32)
        rows.append({"audio": {"array": clip, "sampling_rate": 16_000}, "asr_text": " ".join(words)})
    return rows


def make_collator(tokenizer, seed: int | None = 0, **kwargs) -> DataCollatorForCtalPreTraining:
    return DataCollatorForCtalPreTraining(
        DataCollatorForAudioText(FakeProcessor(tokenizer)), seed=seed, **kwargs
    )


def selected_segments(mask: torch.Tensor, span: int, length: int) -> list[tuple[int, int]]:
    """The (start, end) of the selected segments of one row, checking that the mask is made of whole segments."""
    segments = []
    for start in range(0, length, span):
        end = min(start + span, length)
        chunk = mask[start:end]
        assert chunk.all() or not chunk.any(), "a segment is partly masked"
        if chunk.all():
            segments.append((start, end))
    return segments


def branch(original: torch.Tensor, corrupted: torch.Tensor, start: int, end: int, length: int) -> str:
    """Which MCAM branch produced a segment: zero, keep, or replace (checked to be a window copied from elsewhere)."""
    segment = corrupted[start:end]
    if torch.equal(segment, torch.zeros_like(segment)):
        return "zero"
    if torch.equal(segment, original[start:end]):
        return "keep"
    span = end - start
    # Candidate sources: the positions whose frame equals the segment's first frame; then the whole window.
    candidates = (original[: length - span + 1] == segment[0]).all(dim=-1).nonzero().flatten().tolist()
    sources = [i for i in candidates if torch.equal(original[i : i + span], segment)]
    assert sources and start not in sources, "a replaced segment is not a copy of another window of its row"
    return "replace"


# --- MCAM span masking ------------------------------------------------------------------------------------------------


def test_span_masking_statistics() -> None:
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([400, 237, 120, 61, 300, 180, 15, 350])
    features = torch.randn(len(lengths), 400, FEATURE_SIZE)
    valid = torch.arange(400)[None, :] < lengths[:, None]
    features[~valid] = 0
    masked_frames = valid_frames = 0
    spans, branches = Counter(), Counter()
    for _ in range(300):
        out = mask_audio_spans(features, valid.int(), generator=generator)
        assert torch.equal(out.targets, features)
        assert not (out.mask & ~valid).any(), "padding was selected"
        torch.testing.assert_close(out.input_features[~out.mask], features[~out.mask], atol=0, rtol=0)
        masked_frames += int(out.mask.sum())
        valid_frames += int(valid.sum())
        for row, length in enumerate(lengths.tolist()):
            span = int(out.span_lengths[row])
            spans[span] += 1
            for start, end in selected_segments(out.mask[row], span, length):
                assert end - start == span or end == length
                branches[branch(features[row], out.input_features[row], start, end, length)] += 1

    assert masked_frames / valid_frames == pytest.approx(0.15, abs=0.01)
    assert min(spans) == 20 and max(spans) == 50 and len(spans) == 31  # C ~ U{20, ..., 50}
    assert sum(span * count for span, count in spans.items()) / spans.total() == pytest.approx(35, abs=0.5)
    total = branches.total()
    assert total > 2000
    assert branches["zero"] / total == pytest.approx(0.8, abs=0.03)
    assert branches["replace"] / total == pytest.approx(0.1, abs=0.02)
    assert branches["keep"] / total == pytest.approx(0.1, abs=0.02)


def test_span_masking_is_deterministic_for_a_generator_seed() -> None:
    features = torch.randn(3, 200, FEATURE_SIZE)
    mask = torch.ones(3, 200, dtype=torch.int32)
    first = mask_audio_spans(features, mask, generator=torch.Generator().manual_seed(5))
    again = mask_audio_spans(features, mask, generator=torch.Generator().manual_seed(5))
    other = mask_audio_spans(features, mask, generator=torch.Generator().manual_seed(6))
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.equal(first.mask, other.mask)


def test_a_row_of_one_segment_cannot_be_replaced_by_another_position() -> None:
    # 15 frames < min_span: one segment, the whole row; with replace probability 1 it has nowhere to copy from.
    features = torch.randn(1, 15, FEATURE_SIZE)
    out = mask_audio_spans(
        features,
        mask_probability=1.0,
        zero_probability=0.0,
        replace_probability=1.0,
        generator=torch.Generator(),
    )
    assert out.mask.all()
    torch.testing.assert_close(out.input_features, features, atol=0, rtol=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mask_probability": 1.5}, "mask_probability"),
        ({"zero_probability": 0.95, "replace_probability": 0.1}, "zero_probability"),
        ({"min_span": 30, "max_span": 20}, "min_span"),
    ],
)
def test_span_masking_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        mask_audio_spans(torch.zeros(1, 10, 4), **kwargs)


def test_span_masking_rejects_left_padding() -> None:
    with pytest.raises(ValueError, match="right padding"):
        mask_audio_spans(torch.zeros(1, 4, 2), torch.tensor([[0, 0, 1, 1]]))


# --- the collator -----------------------------------------------------------------------------------------------------


def test_mlm_statistics_and_never_special_tokens_or_padding(tokenizer) -> None:
    collator = make_collator(tokenizer, seed=0)
    base = DataCollatorForAudioText(FakeProcessor(tokenizer))(make_rows(16, seed=1))
    maskable = (base["attention_mask"] == 1) & (base["input_ids"] > 4)
    masked = mask_token = kept = candidates = 0
    for _ in range(300):
        out = collator.mask_batch(dict(base))
        selected = out["labels"] != -100
        assert not (selected & ~maskable).any(), "a special token or padding was selected"
        torch.testing.assert_close(out["input_ids"][~selected], base["input_ids"][~selected], atol=0, rtol=0)
        torch.testing.assert_close(out["labels"][selected], base["input_ids"][selected], atol=0, rtol=0)
        candidates += int(maskable.sum())
        masked += int(selected.sum())
        mask_token += int((out["input_ids"][selected] == tokenizer.mask_token_id).sum())
        kept += int((out["input_ids"][selected] == base["input_ids"][selected]).sum())
    assert masked / candidates == pytest.approx(0.15, abs=0.01)
    assert mask_token / masked == pytest.approx(0.8, abs=0.02)
    assert kept / masked == pytest.approx(0.1, abs=0.015)
    assert (masked - mask_token - kept) / masked == pytest.approx(0.1, abs=0.015)


def test_collator_outputs_what_ctal_for_pretraining_takes(tokenizer) -> None:
    rows = make_rows(4)
    plain = DataCollatorForAudioText(FakeProcessor(tokenizer))(rows)
    batch = make_collator(tokenizer, seed=0)(rows)
    assert {"labels", "audio_labels", "audio_labels_mask"} <= set(batch)
    torch.testing.assert_close(batch["audio_labels"], plain["input_features"], atol=0, rtol=0)
    assert batch["audio_labels_mask"].dtype == torch.bool and batch["audio_labels_mask"].any()
    assert not (batch["audio_labels_mask"] & (plain["audio_attention_mask"] == 0)).any()
    assert not torch.equal(batch["input_features"], plain["input_features"])

    config = CtalConfig.from_preset("tiny", vocab_size=len(tokenizer), max_audio_frames=512)
    torch.manual_seed(0)
    out = CtalForPreTraining(config)(**batch)
    assert torch.isfinite(out.loss) and out.mlm_loss is not None and out.mcam_loss is not None


def test_collator_is_deterministic_for_a_seed(tokenizer) -> None:
    rows = make_rows(6)

    def batches(seed: int | None) -> list[dict]:
        collator = make_collator(tokenizer, seed=seed)
        return [collator(rows) for _ in range(3)]

    first, again, other = batches(3), batches(3), batches(4)
    for a, b in zip(first, again, strict=True):
        for key in ("input_ids", "labels", "input_features", "audio_labels_mask"):
            torch.testing.assert_close(a[key], b[key], atol=0, rtol=0)
    # Consecutive batches differ (one generator advances), and another seed gives other masks.
    assert not torch.equal(first[0]["audio_labels_mask"], first[1]["audio_labels_mask"])
    assert not torch.equal(first[0]["audio_labels_mask"], other[0]["audio_labels_mask"])

    # Without a seed, torch's global generator decides (as transformers.set_seed seeds it).
    torch.manual_seed(11)
    unseeded = make_collator(tokenizer, seed=None)(rows)
    torch.manual_seed(11)
    unseeded_again = make_collator(tokenizer, seed=None)(rows)
    torch.testing.assert_close(unseeded["input_ids"], unseeded_again["input_ids"], atol=0, rtol=0)
    torch.testing.assert_close(
        unseeded["audio_labels_mask"], unseeded_again["audio_labels_mask"], atol=0, rtol=0
    )


def test_collator_rejects_a_label_column(tokenizer) -> None:
    with pytest.raises(ValueError, match="label_column"):
        DataCollatorForCtalPreTraining(
            DataCollatorForAudioText(FakeProcessor(tokenizer), label_column="intent")
        )
    with pytest.raises(ValueError, match="min_span"):
        make_collator(tokenizer, min_span=0)


def test_trainer_pretrains_ctal_on_raw_rows(tokenizer, tmp_path) -> None:
    """The wiring a pre-training script needs: raw (audio, transcript) rows, the collator, `CtalForPreTraining`."""
    rows = make_rows(8)
    dataset = Dataset.from_list(
        [
            {
                "audio": {"array": row["audio"]["array"].tolist(), "sampling_rate": 16_000},
                "asr_text": row["asr_text"],
            }
            for row in rows
        ]
    )
    config = CtalConfig.from_preset("tiny", vocab_size=len(tokenizer), max_audio_frames=512)
    torch.manual_seed(0)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        remove_unused_columns=False,  # the collator reads the raw `audio` and `asr_text` columns
        prediction_loss_only=True,  # MLM logits over the vocabulary are not worth gathering
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=CtalForPreTraining(config),
        args=args,
        train_dataset=dataset,
        eval_dataset=dataset,
        data_collator=make_collator(tokenizer, seed=args.seed),
    )
    assert trainer.label_names == ["labels", "audio_labels", "audio_labels_mask"]
    assert trainer.train().training_loss > 0
    assert trainer.evaluate()["eval_loss"] > 0


def test_collator_with_the_ctal_processor() -> None:
    """Real waveforms and transcripts through `CtalProcessor` (log-mel + delta frames, byte-level BPE)."""
    texts = [
        "navigate to the airport",
        "play some jazz music",
        "turn up the volume",
        "call mom on the mobile",
    ]
    tokenizer = train_ctal_tokenizer(texts * 10, vocab_size=300, min_frequency=2)
    config = CtalConfig.from_preset("tiny", vocab_size=len(tokenizer), max_audio_frames=512)
    processor = CtalProcessor.from_config(config, tokenizer)
    rng = np.random.default_rng(0)
    rows = [
        {
            "audio": {"array": (0.1 * rng.standard_normal(n)).astype(np.float32), "sampling_rate": 16_000},
            "asr_text": t,
        }
        for n, t in zip((16_000, 9_000, 12_500, 20_000), texts, strict=True)
    ]
    collator = DataCollatorForCtalPreTraining(DataCollatorForAudioText(processor), seed=0)
    batch = collator(rows)
    assert batch["input_features"].shape == (4, 101, 160)  # 1 + 20000 // 200 frames
    assert batch["audio_labels_mask"].sum() > 0
    special = torch.isin(batch["labels"], torch.tensor(tokenizer.all_special_ids))
    assert not special.any()
    torch.manual_seed(0)
    out = CtalForPreTraining(config)(**batch)
    assert torch.isfinite(out.loss)
