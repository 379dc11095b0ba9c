"""Train CTAL's text tokenizer: byte-level BPE with RoBERTa's special tokens (CTAL paper, sections 3.1.1 and 4.1).

A library helper for preparing a checkpoint, not needed to load one: the trained tokenizer is saved as a plain
`RobertaTokenizerFast` folder that `AutoTokenizer.from_pretrained` reads without audiolang.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from datasets import Dataset, DatasetDict
from tokenizers import AddedToken, ByteLevelBPETokenizer
from transformers import RobertaTokenizerFast

__all__ = ["CTAL_SPECIAL_TOKENS", "train_ctal_tokenizer"]

# RoBERTa's order: <s>=0, <pad>=1, </s>=2, <unk>=3, then <mask>. Byte-level BPE never needs <unk> for text (every
# byte is in the vocabulary), but RobertaTokenizerFast expects one and DataCollatorForAudioText encodes empty
# transcripts as it.
CTAL_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def train_ctal_tokenizer(
    texts_or_dataset: Iterable[str] | Dataset,
    vocab_size: int = 30_000,
    min_frequency: int = 2,
    text_column: str = "text",
    output_dir: str | Path | None = None,
    model_max_length: int = 512,
) -> RobertaTokenizerFast:
    """Train a byte-level BPE tokenizer (RoBERTa/GPT-2 style) on transcripts.

    Encoding adds `<s>` ... `</s>` around a text; `<mask>` absorbs the space before it, as in RoBERTa, so that
    `"turn <mask> the radio"` masks a whole word. Training is deterministic: the same texts in the same order give
    the same vocabulary and merges.

    Args:
        texts_or_dataset: An iterable of strings (a list, a generator, ...) or a `datasets.Dataset` whose
            `text_column` holds them. Empty strings are skipped.
        vocab_size: Target vocabulary size, special tokens and the 256 byte symbols included (30K in the paper). A
            small corpus may stop short of it: BPE stops when no pair occurs `min_frequency` times.
        min_frequency: Fewest occurrences of a pair for it to be merged.
        text_column: The column to read when `texts_or_dataset` is a `Dataset`.
        output_dir: If given, the tokenizer is saved there (`save_pretrained`).
        model_max_length: The tokenizer's `model_max_length` (RoBERTa's 512 positions by default).

    Returns:
        The trained `RobertaTokenizerFast`.

    Raises:
        ValueError: for a single string, a `DatasetDict`, a missing column, a non-string item, no non-empty text,
            or a `vocab_size` too small for the byte alphabet and special tokens.
    """
    minimum = 256 + len(CTAL_SPECIAL_TOKENS)
    if vocab_size < minimum:
        raise ValueError(
            f"`vocab_size` must be at least {minimum} (256 byte symbols + {len(CTAL_SPECIAL_TOKENS)} special "
            f"tokens), got {vocab_size}."
        )
    texts = _iter_texts(texts_or_dataset, text_column)
    trained_on = [0]

    def non_empty() -> Iterator[str]:
        for text in texts:
            if text.strip():
                trained_on[0] += 1
                yield text

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        non_empty(),
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(CTAL_SPECIAL_TOKENS),
        show_progress=False,
    )
    if trained_on[0] == 0:
        raise ValueError(
            "No text to train the tokenizer on: every transcript is empty. Check `text_column` (e.g. `text` for "
            "manual transcripts, `asr_text` for ASR output) and that the dataset has rows."
        )
    model = json.loads(bpe.to_str())["model"]
    tokenizer = RobertaTokenizerFast(
        vocab=model["vocab"],
        merges=[tuple(merge) for merge in model["merges"]],
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False),
        model_max_length=model_max_length,
    )
    if output_dir is not None:
        tokenizer.save_pretrained(output_dir)
    return tokenizer


def _iter_texts(texts_or_dataset: Iterable[str] | Dataset, text_column: str) -> Iterator[str]:
    if isinstance(texts_or_dataset, str):
        raise ValueError(
            "`texts_or_dataset` is a single string: pass a list of strings (iterating a string yields characters)."
        )
    if isinstance(texts_or_dataset, DatasetDict):
        raise ValueError(
            f"`texts_or_dataset` is a DatasetDict with splits {sorted(texts_or_dataset)}: pass one split, e.g. "
            f"`dataset['pretrain']`."
        )
    if isinstance(texts_or_dataset, Dataset):
        if text_column not in texts_or_dataset.column_names:
            raise ValueError(
                f"`text_column` {text_column!r} is not a column of the dataset; its columns are "
                f"{texts_or_dataset.column_names}."
            )
        texts_or_dataset = (
            text
            for batch in texts_or_dataset.select_columns([text_column]).iter(1_000)
            for text in batch[text_column]
        )
    for index, text in enumerate(texts_or_dataset):
        if not isinstance(text, str):
            raise ValueError(
                f"item {index} of the texts is a {type(text).__name__}, not a string: pass strings, or a "
                f"`datasets.Dataset` with `text_column`."
            )
        yield text
