"""Corpus-level word and character error rates of ASR transcripts (via jiwer).

Both rates are corpus-level: the edit operations of every pair are summed and divided by the total
length of the references, so a long utterance weighs more than a short one (the usual ASR convention,
not the mean of per-utterance rates).

Text normalisation, applied to references and hypotheses alike (``normalize_text``):

1. lowercase;
2. apostrophes (``'`` and ``’``) are deleted, so that "don't" and "dont" match;
3. every other Unicode punctuation character is replaced by a space, so that "hip-hop" and "hip hop"
   match;
4. whitespace runs collapse to one space, leading and trailing whitespace is dropped.

Empty references (after normalisation) are allowed, e.g. for non-speech utterances: each word (or
character) of their hypothesis counts as an insertion. A corpus whose references are all empty has no
defined rate and raises a ValueError.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

import jiwer

_APOSTROPHES = ("'", "\u2019")


def normalize_text(text: str) -> str:
    """Lowercase, delete apostrophes, turn other punctuation into spaces and collapse whitespace."""
    text = text.lower()
    for apostrophe in _APOSTROPHES:
        text = text.replace(apostrophe, "")
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    return " ".join(text.split())


def _as_list(texts: str | Sequence[str], name: str) -> list[str]:
    # A bare string would otherwise be iterated character by character.
    texts = [texts] if isinstance(texts, str) else list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{name}[{i}] is {type(text).__name__}, expected str")
    return texts


def _corpus_error_rate(
    references: str | Sequence[str],
    hypotheses: str | Sequence[str],
    process: Callable[[list[str], list[str]], jiwer.WordOutput | jiwer.CharacterOutput],
    units: Callable[[str], int],
) -> float:
    refs = [normalize_text(t) for t in _as_list(references, "references")]
    hyps = [normalize_text(t) for t in _as_list(hypotheses, "hypotheses")]
    if len(refs) != len(hyps):
        raise ValueError(
            f"references and hypotheses must pair up, got {len(refs)} references and {len(hyps)} hypotheses"
        )
    total = sum(units(r) for r in refs)
    if total == 0:
        raise ValueError(
            "every reference is empty after normalisation: the error rate is undefined; "
            "pass at least one reference with words in it"
        )
    # Empty references are scored here rather than by jiwer, whose handling of them changed across versions.
    errors = sum(units(h) for r, h in zip(refs, hyps, strict=True) if not r)
    scored = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    if scored:
        out = process([r for r, _ in scored], [h for _, h in scored])
        errors += out.substitutions + out.deletions + out.insertions
    return errors / total


def word_error_rate(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Corpus-level word error rate: (substitutions + deletions + insertions) / reference words.

    Args:
        references: the manual transcripts (one string, or one per utterance).
        hypotheses: the ASR transcripts, paired with ``references`` by position.

    Returns:
        The rate as a fraction (0.25 is 25 %); it can exceed 1 when the hypotheses insert many words.

    See the module docstring for the text normalisation and the handling of empty references.
    """
    return _corpus_error_rate(references, hypotheses, jiwer.process_words, lambda t: len(t.split()))


def character_error_rate(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Corpus-level character error rate over the normalised texts; the single spaces between words count.

    Same arguments, return value and normalisation as ``word_error_rate``.
    """
    return _corpus_error_rate(references, hypotheses, jiwer.process_characters, len)
