"""Offline speech recognition behind one small interface, and transcription of ``datasets`` datasets.

Back-ends (``load_asr`` picks one from a spec string):

- ``PocketSphinxASR`` ("pocketsphinx"): CMU PocketSphinx with the bundled US-English acoustic model,
  either with the bundled general language model or with a domain trigram model from
  ``build_pocketsphinx_lm``. Fast (a few hundredths of a CPU second per audio second), always available.
- ``TransformersASR`` (any other spec): a transformers ``automatic-speech-recognition`` pipeline over a
  hub id or a local folder (wav2vec2 CTC, Whisper, ...).
- ``WhisperASR`` ("whisper-base", "whisper-tiny.en", "whisper:<folder>"): OpenAI Whisper in transformers,
  batched, in encoder windows shorter than Whisper's 30 s, with a repetition guard; "whisper-base" is the
  Whisper base that registry wheels carry, converted from CTranslate2 on first use.
- ``FasterWhisperASR`` ("faster-whisper:<dir>", "faster-whisper-tiny.en", "faster-whisper-base"): a Whisper model in CTranslate2 format, through the
  optional extra ``faster-whisper`` (``pip install 'audiolang[whisper]'``).

Every back-end takes a batch of 16 kHz mono float waveforms and returns one transcript per waveform,
normalised by ``normalize_transcript`` (lowercase words, no punctuation), so that transcripts from
different back-ends look alike. Back-ends load their model lazily and leave it out when pickled, so a
back-end can be shipped to worker processes (``multiprocessing``, ``datasets.map(num_proc=...)``) cheaply;
each worker loads the model once, on its first batch.

``transcribe_dataset`` adds a transcript column to a dataset; ``transcribe_shard`` and ``merge_shards``
make a long transcription resumable and spreadable over processes or machines
(``run_scripts/run_transcribe.py`` is the command-line front end).
"""

from __future__ import annotations

import abc
import io
import logging
import math
import os
import re
import shutil
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

SAMPLING_RATE = 16_000
_WHISPER_INSTALL_HINT = "pip install 'audiolang[whisper]'  (or: pip install faster-whisper)"

# A word is a run of letters/digits, possibly joined by apostrophes ("don't", "o'clock"): the shape of
# cmudict's entries, so LM vocabulary and transcripts tokenise the same way.
_WORD = re.compile(r"\w+(?:'\w+)*")


def normalize_transcript(text: str) -> str:
    """Lowercase ``text`` and keep only its words (intra-word apostrophes included), space-separated."""
    return " ".join(_WORD.findall(text.lower().replace("\u2019", "'")))


def validate_audio_batch(
    audio: Sequence[np.ndarray], sampling_rate: int, expected_sampling_rate: int = SAMPLING_RATE
) -> list[np.ndarray]:
    """Check a batch of waveforms for ASR and return it as float32 arrays.

    Raises:
        ValueError: naming the offending field and the fix, for a sampling rate other than
            ``expected_sampling_rate``, a single waveform passed instead of a batch, non-float samples,
            multi-channel (e.g. stereo) audio, empty audio, and NaN or infinite samples.
    """
    if sampling_rate is None:
        raise ValueError(
            f"sampling_rate is missing: pass the rate of the audio ({expected_sampling_rate} Hz expected)"
        )
    if sampling_rate != expected_sampling_rate:
        raise ValueError(
            f"sampling_rate is {sampling_rate} Hz but the recogniser expects {expected_sampling_rate} Hz: "
            f"resample first, e.g. librosa.resample(x, orig_sr={sampling_rate}, "
            f"target_sr={expected_sampling_rate}), or for a datasets column "
            f"dataset.cast_column('audio', Audio(sampling_rate={expected_sampling_rate}))"
        )
    if isinstance(audio, np.ndarray) and audio.ndim == 1:
        raise ValueError("audio must be a batch of waveforms; wrap a single waveform as [waveform]")
    batch = []
    for i, waveform in enumerate(audio):
        x = np.asarray(waveform)
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(
                f"audio[{i}] has dtype {x.dtype}; expected float samples in [-1, 1] "
                "(for 16-bit PCM: x.astype(np.float32) / 32768)"
            )
        if x.ndim != 1:
            raise ValueError(
                f"audio[{i}] has shape {x.shape}; expected mono audio as a 1-D array: mix multi-channel "
                "audio down first: x.mean(axis=0) for (channels, samples), x.mean(axis=1) for (samples, "
                "channels) as soundfile returns it"
            )
        if x.size == 0:
            raise ValueError(f"audio[{i}] is empty (0 samples); drop empty utterances before transcribing")
        if not np.isfinite(x).all():
            raise ValueError(
                f"audio[{i}] contains NaN or infinite samples; repair it (e.g. np.nan_to_num) or drop it"
            )
        batch.append(x.astype(np.float32, copy=False))
    return batch


class ASRBackend(abc.ABC):
    """A speech recogniser: a batch of mono float waveforms in, one lowercase transcript per waveform out.

    Implementations check their input with ``validate_audio_batch``, return ``normalize_transcript``-ed
    text, and stay picklable: they load their model on first use and leave it out of ``__getstate__``.
    """

    name: str
    sampling_rate: int = SAMPLING_RATE

    @abc.abstractmethod
    def transcribe(self, audio: Sequence[np.ndarray], sampling_rate: int) -> list[str]:
        """Transcribe a batch of mono float32 waveforms at ``sampling_rate`` Hz.

        Returns one normalised transcript per waveform (``normalize_transcript``); "" where nothing was
        recognised. Raises ValueError for bad input (see ``validate_audio_batch``).
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


# --- PocketSphinx ------------------------------------------------------------------------------------


def _read_cmudict(path: Path) -> dict[str, list[str]]:
    """Word -> its pronunciations (phone strings) in file order; "word(2)" lines are alternates."""
    pronunciations: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            entry, _, phones = line.strip().partition(" ")
            if phones:
                pronunciations.setdefault(entry.split("(", 1)[0], []).append(phones.strip())
    return pronunciations


def _write_atomic(path: Path, text: str) -> None:
    # Several processes (torchrun ranks) may build the same LM into one folder at once: each writes a
    # private temporary file and renames it, so a reader never sees a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build_pocketsphinx_lm(sentences: Iterable[str], output_dir: str | Path) -> tuple[Path, Path]:
    """Build a domain trigram ARPA LM and its pronunciation dictionary for ``PocketSphinxASR``.

    The sentences are normalised like transcripts (``normalize_transcript``). Words that the bundled
    ``cmudict-en-us.dict`` cannot pronounce (numerals, names, typos) are dropped from the sentences, so
    the LM and the dictionary share one vocabulary and the decoder never meets a word it cannot say; the
    dropped words are logged as a warning. The LM uses pocketsphinx's own fixed-discount back-off
    builder (``pocketsphinx.lm.ArpaBoLM``, what ``pocketsphinx_lm -a`` runs). The output is deterministic:
    the same sentences in the same order give byte-identical files.

    Args:
        sentences: the domain text, one sentence per item.
        output_dir: created if needed; receives ``domain.arpa`` and ``domain.dict``.

    Returns:
        ``(lm_path, dict_path)``, to pass to ``PocketSphinxASR(lm_path=..., dict_path=...)``.
    """
    from pocketsphinx import get_model_path
    from pocketsphinx.lm import ArpaBoLM

    pronunciations = _read_cmudict(Path(get_model_path("en-us/cmudict-en-us.dict")))
    tokenised = [normalize_transcript(s).split() for s in sentences]
    oov = sorted({w for words in tokenised for w in words if w not in pronunciations})
    if oov:
        logger.warning(
            "build_pocketsphinx_lm: dropped %d word(s) that cmudict-en-us.dict cannot pronounce: %s",
            len(oov),
            " ".join(oov),
        )
    kept = [[w for w in words if w in pronunciations] for words in tokenised]
    corpus = "\n".join(" ".join(words) for words in kept if words)
    if not corpus:
        raise ValueError(
            "sentences contain no word that cmudict-en-us.dict can pronounce; pass English domain text"
        )
    lm = ArpaBoLM(text=corpus, add_start=True)
    lm.compute()
    arpa = io.StringIO()
    lm.write(arpa)
    dict_lines = [
        f"{word if i == 0 else f'{word}({i + 1})'} {phones}\n"
        for word in sorted({w for words in kept for w in words})
        for i, phones in enumerate(pronunciations[word])
    ]
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    lm_path, dict_path = output_dir / "domain.arpa", output_dir / "domain.dict"
    _write_atomic(lm_path, arpa.getvalue())
    _write_atomic(dict_path, "".join(dict_lines))
    return lm_path, dict_path


class PocketSphinxASR(ASRBackend):
    """CMU PocketSphinx (bundled US-English acoustic model), optionally with a domain LM.

    Args:
        lm_path: an ARPA or binary n-gram LM; None uses the bundled general English LM.
        dict_path: a pronunciation dictionary covering the LM's words; None uses the bundled cmudict.
        **decoder_kwargs: further ``pocketsphinx.Decoder`` parameters (e.g. ``lw=6.5``, ``beam=1e-60``).

    The decoder is created on the first ``transcribe`` call and reused for every utterance; it is left
    out when pickled. Every utterance is decoded from the same initial state, so a transcript does not
    depend on the utterances decoded before it. Defaults that decoder_kwargs can override: no log output
    (``loglevel="FATAL"``), a reproducible dither (``dither=True, seed=0``).
    Samples outside [-1, 1] are clipped when converted to the 16-bit PCM that pocketsphinx decodes.
    """

    name = "pocketsphinx"

    def __init__(
        self, lm_path: str | Path | None = None, dict_path: str | Path | None = None, **decoder_kwargs: Any
    ) -> None:
        for field, path in (("lm_path", lm_path), ("dict_path", dict_path)):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(
                    f"{field} {str(path)!r} is not a file; build a domain LM and dictionary with "
                    "build_pocketsphinx_lm(sentences, output_dir), or pass None for the bundled ones"
                )
        self.lm_path = None if lm_path is None else Path(lm_path)
        self.dict_path = None if dict_path is None else Path(dict_path)
        self.decoder_kwargs = decoder_kwargs
        self._decoder: Any = None

    def _get_decoder(self) -> Any:
        if self._decoder is None:
            from pocketsphinx import Decoder

            # dither: synthetic or zero-padded audio has runs of exact zeros, whose log energy would
            # drag the batch cepstral mean far down; the fixed seed keeps the dither reproducible.
            config: dict[str, Any] = {
                "samprate": self.sampling_rate,
                "loglevel": "FATAL",
                "dither": True,
                "seed": 0,
            }
            if self.lm_path is not None:
                config["lm"] = str(self.lm_path)
            if self.dict_path is not None:
                config["dict"] = str(self.dict_path)
            self._decoder = Decoder(**{**config, **self.decoder_kwargs})
        return self._decoder

    def transcribe(self, audio: Sequence[np.ndarray], sampling_rate: int) -> list[str]:
        batch = validate_audio_batch(audio, sampling_rate, self.sampling_rate)
        decoder = self._get_decoder()
        transcripts = []
        for x in batch:
            pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")
            # The decoder carries cepstral-mean and noise estimates from one utterance to the next, which
            # would make a transcript depend on what the same process decoded before (and so on how
            # utterances were spread over workers). Resetting them keeps every utterance independent.
            decoder.reinit_feat()
            decoder.start_utt()
            # full_utt: the whole utterance is given at once, so the bundled model gets the batch cepstral
            # mean normalisation it was trained with (its feat.params say -cmn batch).
            decoder.process_raw(pcm.tobytes(), False, True)
            decoder.end_utt()
            hyp = decoder.hyp()
            transcripts.append(normalize_transcript(hyp.hypstr) if hyp is not None else "")
        return transcripts

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_decoder": None}


# --- transformers ------------------------------------------------------------------------------------


class TransformersASR(ASRBackend):
    """A transformers ``automatic-speech-recognition`` pipeline (wav2vec2/HuBERT CTC, Whisper, ...).

    Args:
        model_name_or_path: a hub id or a local folder written by ``save_pretrained`` (with its
            tokenizer and feature extractor).
        device: passed to ``transformers.pipeline`` (e.g. -1 or "cpu", 0 or "cuda:0").
        batch_size: utterances per forward pass.
        **pipeline_kwargs: further ``transformers.pipeline`` arguments (e.g. ``dtype``, ``chunk_length_s``).

    The pipeline is built on the first ``transcribe`` call and left out when pickled.
    """

    def __init__(
        self,
        model_name_or_path: str,
        device: int | str | None = None,
        batch_size: int = 8,
        **pipeline_kwargs: Any,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_name_or_path = str(model_name_or_path)
        self.name = f"transformers:{self.model_name_or_path}"
        self.device = device
        self.batch_size = batch_size
        self.pipeline_kwargs = pipeline_kwargs
        self._pipeline: Any = None

    def _get_pipeline(self) -> Any:
        if self._pipeline is None:
            from transformers import pipeline

            self._pipeline = pipeline(
                "automatic-speech-recognition",
                model=self.model_name_or_path,
                device=self.device,
                **self.pipeline_kwargs,
            )
        return self._pipeline

    def transcribe(self, audio: Sequence[np.ndarray], sampling_rate: int) -> list[str]:
        batch = validate_audio_batch(audio, sampling_rate, self.sampling_rate)
        if not batch:
            return []
        inputs = [{"raw": x, "sampling_rate": sampling_rate} for x in batch]
        outputs = self._get_pipeline()(inputs, batch_size=self.batch_size)
        return [normalize_transcript(out["text"]) for out in outputs]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pipeline": None}


# --- Whisper through transformers -------------------------------------------------------------------

# Whisper's window: 30 s of audio, 3,000 log-mel frames, 1,500 encoder positions.
WHISPER_MAX_SECONDS = 30.0
# The encoder of one window: its `(clips, mel bins, frames)` log-mel features -> the last hidden state.
EncodeWindow = Callable[[Any], Any]
# OpenAI's threshold: a transcript whose gzip compression ratio exceeds it is taken to be a repetition loop.
COMPRESSION_RATIO_THRESHOLD = 2.4


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` over bytes of its zlib compression: high for repetitive text (OpenAI Whisper's test)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


class WhisperASR(ASRBackend):
    """OpenAI Whisper (``WhisperForConditionalGeneration``) decoding batches of short clips cheaply.

    transformers' ``generate`` pads every clip to Whisper's 30 s window; here the encoder runs on a shorter
    window instead, ``max(min_window_s, the batch's longest clip)``, through ``VariableLengthWhisperEncoder``
    (the position table sliced to the window; no attention mask: the clip is followed by silence, as in a
    30 s window), and ``generate`` decodes from those encoder states. The encoder's cost is linear in the
    window: ~0.12 s for 10 s against ~1.2 s for 30 s (Whisper base, one core). Windows much shorter than
    Whisper's 30 s make it repeat itself; 10 s kept transcripts as good on the embedded corpus.

    Repetition guard: a transcript that reaches ``max_new_tokens`` (``max_tokens_per_second`` times the
    clip's duration, plus 8) or whose compression ratio exceeds ``COMPRESSION_RATIO_THRESHOLD`` is decoded
    again in the full 30 s window, which is exactly Whisper's own short-form decoding; that result is kept.

    Multilingual models are forced to English transcription (``language="en"``, ``task="transcribe"``); no
    language detection runs. Clips within a ``transcribe`` call are grouped by length into batches of
    ``batch_size``. With clips up to ``min_window_s`` long (the embedded corpus) every clip is decoded in
    the same window, so a transcript does not depend on the other clips of its batch.

    Args:
        model_name_or_path: a transformers Whisper folder or hub id (``convert_ctranslate2_whisper``'s
            output; ``load_asr("whisper-base")`` resolves the packaged one).
        num_beams: 1 is greedy decoding.
        batch_size: clips per forward pass.
        min_window_s: the shortest encoder window, in seconds (at most 30).
        max_tokens_per_second: the decoding budget per second of audio (fast speech is ~4 tokens/s).
        num_threads: torch threads while transcribing (restored afterwards); None uses every core. Keep it
            at 1 when several processes transcribe side by side.
        device: where the model runs ("cpu", "cuda:0", ...).
        dtype: the model's weight type.

    Clips longer than 30 s are refused: use ``TransformersASR(..., chunk_length_s=30)`` for long audio.
    """

    def __init__(
        self,
        model_name_or_path: str | Path,
        num_beams: int = 1,
        batch_size: int = 8,
        min_window_s: float = 10.0,
        max_tokens_per_second: float = 8.0,
        num_threads: int | None = None,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        if num_beams < 1 or batch_size < 1:
            raise ValueError(f"num_beams and batch_size must be >= 1, got {num_beams} and {batch_size}")
        if not 0 < min_window_s <= WHISPER_MAX_SECONDS:
            raise ValueError(
                f"min_window_s must be in (0, {WHISPER_MAX_SECONDS:g}] seconds, got {min_window_s}"
            )
        self.model_name_or_path = str(model_name_or_path)
        self.name = f"whisper:{self.model_name_or_path}"
        self.num_beams = num_beams
        self.batch_size = batch_size
        self.min_window_s = min_window_s
        self.max_tokens_per_second = max_tokens_per_second
        self.num_threads = num_threads
        self.device = device
        self.dtype = dtype
        self._model: Any = None
        self._processor: Any = None

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            import torch
            from transformers import WhisperForConditionalGeneration, WhisperProcessor

            from ..whisper_encoder import VariableLengthWhisperEncoder

            model = WhisperForConditionalGeneration.from_pretrained(
                self.model_name_or_path, dtype=getattr(torch, self.dtype)
            )
            model.model.encoder = VariableLengthWhisperEncoder.from_model(model)
            self._model = model.to(self.device).eval()
            self._processor = WhisperProcessor.from_pretrained(self.model_name_or_path)
        return self._model, self._processor

    def _decode(
        self, batch: list[np.ndarray], window_s: float, encode: EncodeWindow | None = None
    ) -> list[tuple[str, bool]]:
        """(transcript, looks like a repetition loop) per clip, decoded in a ``window_s`` window; ``encode`` maps
        the window's log-mel features to the encoder's last hidden state (default: the model's encoder)."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        model, processor = self._load()
        features = processor.feature_extractor(
            batch,
            sampling_rate=self.sampling_rate,
            padding="max_length",
            max_length=round(window_s * self.sampling_rate),
            return_tensors="pt",
        ).input_features.to(self.device, model.dtype)
        if encode is None:
            encode = lambda window: model.get_encoder()(window).last_hidden_state  # noqa: E731
        budgets = [math.ceil(self.max_tokens_per_second * x.size / self.sampling_rate) + 8 for x in batch]
        generation_config = model.generation_config
        language = {"language": "en", "task": "transcribe"} if generation_config.is_multilingual else {}
        with torch.inference_mode():
            encoder_outputs = BaseModelOutput(last_hidden_state=encode(features))
            sequences = model.generate(
                encoder_outputs=encoder_outputs,
                num_beams=self.num_beams,
                max_new_tokens=max(budgets),
                **language,
            )
        eos = generation_config.eos_token_id
        results = []
        for row, budget in zip(sequences.tolist(), budgets, strict=True):
            # Each row is decoded independently of the others, so cutting it at the clip's own budget gives what
            # decoding the clip alone gives: a transcript does not depend on its batch.
            tokens = [t for t in row if t != eos][:budget]
            text = processor.tokenizer.decode(tokens, skip_special_tokens=True)
            # Reaching the budget is what a loop that never emits end-of-text does.
            runaway = len(tokens) >= budget or compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD
            results.append((normalize_transcript(text), runaway))
        return results

    @property
    def processor(self) -> Any:
        """The model's ``WhisperProcessor`` (loaded on first use): its feature extractor makes the windows."""
        return self._load()[1]

    @property
    def encoder(self) -> Any:
        """The model's encoder (a ``VariableLengthWhisperEncoder``, loaded on first use): what
        ``transcribe(..., encode=...)`` stands in for."""
        return self._load()[0].get_encoder()

    def transcribe(
        self,
        audio: Sequence[np.ndarray],
        sampling_rate: int,
        encode: Callable[[list[int], Any], Any] | None = None,
    ) -> list[str]:
        """Transcribe a batch (see ``ASRBackend.transcribe``).

        Args:
            encode: ``encode(indices, input_features) -> last_hidden_state``, called once per encoder window with
                the positions in ``audio`` of the window's clips and their ``(clips, mel bins, frames)`` log-mel
                features, instead of the model's encoder: whoever needs the same encoder states too (the
                audio-text-classification pipeline's shared encoder pass) computes them there once. It must
                return what ``self.encoder`` returns. The repetition guard's 30 s re-decoding runs the model's own
                encoder.
        """
        import torch

        batch = validate_audio_batch(audio, sampling_rate, self.sampling_rate)
        too_long = [i for i, x in enumerate(batch) if x.size > WHISPER_MAX_SECONDS * self.sampling_rate]
        if too_long:
            raise ValueError(
                f"audio[{too_long[0]}] is {batch[too_long[0]].size / self.sampling_rate:.1f} s long; WhisperASR "
                f"decodes clips up to {WHISPER_MAX_SECONDS:g} s: split longer audio, or use "
                "TransformersASR(model, chunk_length_s=30), which decodes it window by window"
            )
        transcripts = [""] * len(batch)
        # Clips of similar length share a batch, so that the window is not set by one long outlier.
        order = sorted(range(len(batch)), key=lambda i: batch[i].size)
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.num_threads or os.cpu_count() or 1)
        try:
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                clips = [batch[i] for i in chunk]
                window_s = max(self.min_window_s, max(x.size for x in clips) / self.sampling_rate)
                window_encode = None if encode is None else partial(encode, chunk)
                results = self._decode(clips, min(window_s, WHISPER_MAX_SECONDS), window_encode)
                for i, clip, (text, runaway) in zip(chunk, clips, results, strict=True):
                    if runaway and window_s < WHISPER_MAX_SECONDS:
                        logger.debug(
                            "%s: repetition in a %.1f s window; decoding in 30 s", self.name, window_s
                        )
                        text = self._decode([clip], WHISPER_MAX_SECONDS)[0][0]
                    transcripts[i] = text
        finally:
            torch.set_num_threads(previous_threads)
        return transcripts

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None, "_processor": None}


# --- faster-whisper ----------------------------------------------------------------------------------


def _import_whisper_model() -> Any:
    try:
        from faster_whisper import WhisperModel
    except ImportError as e:
        raise ImportError(
            f"FasterWhisperASR needs the optional extra faster-whisper: {_WHISPER_INSTALL_HINT}"
        ) from e
    return WhisperModel


class FasterWhisperASR(ASRBackend):
    """Whisper through faster-whisper (CTranslate2), on CPU; an optional extra.

    Args:
        model_dir: a local folder with a CTranslate2 Whisper model (``model.bin``, ``config.json``,
            ``tokenizer.json``); nothing is downloaded.
        compute_type: CTranslate2 weight type ("int8" is the fastest on CPU, "float32" the most exact).
        beam_size: 1 is greedy decoding.
        language: the spoken language (English-only ``*.en`` models always decode English).
        cpu_threads: threads per model; keep it at 1 when many processes transcribe side by side.
        window_s: the encoder window in whole seconds (faster-whisper's ``chunk_length``); None is Whisper's
            30 s. CTranslate2's encoder takes shorter windows, and its cost is linear in the window: 10 s, the
            window of ``WhisperASR``, costs a third of 30 s.

    Utterances are decoded one after the other, without voice-activity filtering or timestamps, each as
    a single window (longer audio is decoded window by window).
    """

    def __init__(
        self,
        model_dir: str | Path,
        compute_type: str = "int8",
        beam_size: int = 1,
        language: str = "en",
        cpu_threads: int = 1,
        window_s: int | None = None,
    ) -> None:
        if window_s is not None and not (isinstance(window_s, int) and 0 < window_s <= WHISPER_MAX_SECONDS):
            raise ValueError(
                f"window_s must be a whole number of seconds in [1, 30] or None, got {window_s!r}"
            )
        _import_whisper_model()  # fail here, with the install command, rather than in a worker later
        if not Path(model_dir).is_dir():
            raise FileNotFoundError(
                f"model_dir {str(model_dir)!r} is not a folder; pass a CTranslate2 Whisper model folder "
                "(e.g. one converted with ct2-transformers-converter)"
            )
        self.model_dir = Path(model_dir)
        self.name = f"faster-whisper:{self.model_dir}"
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.language = language
        self.cpu_threads = cpu_threads
        self.window_s = window_s
        self._model: Any = None

    def _get_model(self) -> Any:
        if self._model is None:
            whisper_model = _import_whisper_model()
            self._model = whisper_model(
                str(self.model_dir),
                device="cpu",
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
            )
        return self._model

    def transcribe(self, audio: Sequence[np.ndarray], sampling_rate: int) -> list[str]:
        batch = validate_audio_batch(audio, sampling_rate, self.sampling_rate)
        model = self._get_model()
        transcripts = []
        for x in batch:
            segments, _ = model.transcribe(
                x,
                beam_size=self.beam_size,
                language=self.language,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
                chunk_length=self.window_s,
            )
            # segments is a generator: decoding happens while it is consumed.
            transcripts.append(normalize_transcript(" ".join(s.text for s in segments)))
        return transcripts

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}


def load_asr(spec: str, **kwargs: Any) -> ASRBackend:
    """Build an ASR back-end from a spec string.

    - ``"pocketsphinx"``: ``PocketSphinxASR(**kwargs)`` (e.g. ``lm_path=..., dict_path=...``);
    - ``"whisper-base"``, ``"whisper-tiny.en"``: ``WhisperASR(**kwargs)`` on the Whisper that the installed
      registry wheels carry, converted to transformers on first use (``packaged_whisper_path``);
    - ``"whisper:<folder or hub id>"``: ``WhisperASR(folder, **kwargs)`` on any transformers Whisper;
    - ``"faster-whisper:<CTranslate2 model dir>"``: ``FasterWhisperASR(dir, **kwargs)``;
    - ``"faster-whisper-base"``, ``"faster-whisper-tiny.en"``: ``FasterWhisperASR(**kwargs)`` on the CTranslate2
      folder of the packaged Whisper as the registry wheels carry it (``packaged_ctranslate2_whisper_dir``);
    - anything else, a hub id or a local folder: ``TransformersASR(spec, **kwargs)``.

    Hub ids of packaged models (``openai/whisper-base``, ...) resolve to the installed copy
    (``resolve_pretrained``), so they work offline.
    """
    from ..conversion import (
        PACKAGED_WHISPER,
        packaged_ctranslate2_whisper_dir,
        packaged_whisper_path,
        resolve_pretrained,
    )

    if spec == "pocketsphinx":
        return PocketSphinxASR(**kwargs)
    misplaced = sorted({"lm_path", "dict_path"} & kwargs.keys())
    if misplaced:
        raise ValueError(f"{', '.join(misplaced)} only apply to the 'pocketsphinx' back-end, not {spec!r}")
    if spec.startswith("faster-whisper:"):
        model_dir = spec.split(":", 1)[1]
        if not model_dir:
            raise ValueError("spec 'faster-whisper:' needs a model folder: 'faster-whisper:/path/to/model'")
        return FasterWhisperASR(model_dir, **kwargs)
    if spec.startswith("faster-whisper-") and spec.removeprefix("faster-whisper-") in PACKAGED_WHISPER:
        return FasterWhisperASR(
            packaged_ctranslate2_whisper_dir(spec.removeprefix("faster-whisper-")), **kwargs
        )
    packaged = spec.removeprefix("whisper-")
    if spec.startswith("whisper-") and packaged in PACKAGED_WHISPER:
        return WhisperASR(packaged_whisper_path(packaged), **kwargs)
    if spec.startswith("whisper:"):
        model = spec.split(":", 1)[1]
        if not model:
            raise ValueError(
                "spec 'whisper:' needs a model: 'whisper:/path/to/whisper' or 'whisper:openai/whisper-base'"
            )
        return WhisperASR(resolve_pretrained(model), **kwargs)
    model = resolve_pretrained(spec)
    if not Path(model).is_dir() and model.count("/") != 1:
        # Neither a folder nor an "org/name" hub id: a typo, not something to look for on the Hub.
        raise ValueError(
            f"unknown ASR back-end {spec!r}: use 'pocketsphinx', "
            f"{', '.join(repr(f'{kind}-{name}') for kind in ('whisper', 'faster-whisper') for name in PACKAGED_WHISPER)}, "
            "'whisper:<folder or hub id>', "
            "'faster-whisper:<CTranslate2 model folder>', or a transformers ASR model (a local folder or an "
            "'org/name' hub id)."
        )
    return TransformersASR(model, **kwargs)


# --- datasets ----------------------------------------------------------------------------------------


def audio_to_array(value: Any) -> tuple[np.ndarray, int]:
    """One decoded ``datasets`` audio value -> ``(mono samples, sampling_rate)``.

    Accepts the torchcodec ``AudioDecoder`` that the ``Audio`` feature decodes to in datasets 5.x, and
    the ``{"array": ..., "sampling_rate": ...}`` dicts of older datasets versions and of plain columns.
    Multi-channel audio (channels first) is mixed down to the mean of its channels, as datasets' own
    ``value["array"]`` does; the decoder's own down-mix (``Audio(num_channels=1)``) is avoided because it
    adds the channels at -3 dB each, which pushes identical channels past full scale.
    """
    if hasattr(value, "get_all_samples"):
        samples = value.get_all_samples()
        array, sampling_rate = samples.data.numpy(), samples.sample_rate
    elif isinstance(value, Mapping) and "array" in value and "sampling_rate" in value:
        array, sampling_rate = np.asarray(value["array"]), value["sampling_rate"]
    else:
        raise ValueError(
            f"cannot read audio from a {type(value).__name__} value; the audio column must be a decoded "
            "datasets Audio feature: dataset.cast_column(audio_column, Audio(sampling_rate=16000))"
        )
    return (array.mean(axis=0) if array.ndim == 2 else array), int(sampling_rate)


def transcribe_dataset(
    dataset: Dataset,
    asr: ASRBackend,
    audio_column: str = "audio",
    output_column: str = "asr_text",
    batch_size: int = 16,
    num_proc: int | None = None,
    cache_file_name: str | None = None,
) -> Dataset:
    """Return ``dataset`` with a new ``output_column`` of ``asr`` transcripts of ``audio_column``.

    An ``Audio`` column is decoded at the back-end's sampling rate whatever its stored rate, and
    multi-channel audio is mixed down to mono (``audio_to_array``); the result keeps the original
    feature. Rows keep their order.

    Args:
        dataset: a ``datasets.Dataset``.
        asr: the back-end; it is pickled to the workers when ``num_proc > 1``.
        audio_column: a decoded ``Audio`` column (or a column of ``{"array", "sampling_rate"}`` dicts).
        output_column: the new column; it must not exist yet.
        batch_size: rows per ``asr.transcribe`` call.
        num_proc: worker processes for ``Dataset.map`` (None: this process).
        cache_file_name: where ``Dataset.map`` writes the transcripts (default: the dataset's cache).
    """
    from datasets import Audio, Features, Value, concatenate_datasets

    if audio_column not in dataset.column_names:
        raise ValueError(
            f"audio_column {audio_column!r} is not in the dataset; columns: {dataset.column_names}"
        )
    if output_column in dataset.column_names:
        raise ValueError(
            f"output_column {output_column!r} already exists; choose another name or remove it first "
            f"(dataset.remove_columns({output_column!r}))"
        )
    feature = dataset.features[audio_column]
    decoded = dataset.select_columns([audio_column])
    if isinstance(feature, Audio):
        decoded = decoded.cast_column(audio_column, Audio(sampling_rate=asr.sampling_rate))

    def transcribe_batch(values: list[Any]) -> dict[str, list[str]]:
        arrays, rates = zip(*(audio_to_array(v) for v in values), strict=True)
        if len(set(rates)) > 1:
            raise ValueError(
                f"{audio_column} mixes sampling rates {sorted(set(rates))} in one batch; cast it to one rate: "
                f"dataset.cast_column({audio_column!r}, Audio(sampling_rate={asr.sampling_rate}))"
            )
        return {output_column: asr.transcribe(list(arrays), rates[0])}

    if len(dataset) == 0:  # map never calls the function then, so it would not create the column
        return dataset.add_column(output_column, [], feature=Value("string"))
    # Only the transcripts go through map: copying the audio into a new cache file would double the disk
    # use for nothing. They are then joined column-wise (zero-copy) to the untouched dataset.
    transcripts = decoded.map(
        transcribe_batch,
        input_columns=[audio_column],
        remove_columns=[audio_column],
        batched=True,
        batch_size=batch_size,
        num_proc=num_proc,
        features=Features({output_column: Value("string")}),
        cache_file_name=cache_file_name,
        # The cache fingerprint sees the back-end's settings (e.g. its LM path), not the contents of its
        # model files: a rebuilt LM at the same path would silently reuse stale transcripts.
        load_from_cache_file=False,
        desc=f"Transcribing ({asr.name})",
    )
    return concatenate_datasets([dataset, transcripts], axis=1)


def shard_dir(output_dir: str | Path, shard_index: int, num_shards: int) -> Path:
    """The folder of one finished shard: ``output_dir/shards/<index>-of-<num_shards>``."""
    return Path(output_dir) / "shards" / f"{shard_index:05d}-of-{num_shards:05d}"


def missing_shards(output_dir: str | Path, num_shards: int) -> list[int]:
    """Indices of the shards that are not finished yet."""
    return [i for i in range(num_shards) if not shard_dir(output_dir, i, num_shards).is_dir()]


def transcribe_shard(
    dataset: Dataset,
    asr: ASRBackend,
    output_dir: str | Path,
    shard_index: int = 0,
    num_shards: int = 1,
    audio_column: str = "audio",
    output_column: str = "asr_text",
    batch_size: int = 16,
    num_proc: int | None = None,
) -> Path:
    """Transcribe one contiguous shard of ``dataset`` into ``shard_dir(output_dir, ...)``, resumably.

    A shard whose folder exists is finished and skipped. The shard is written to a temporary folder and
    renamed into place only when complete, so an interrupted run leaves no shard folder behind; its
    leftover temporary folder is replaced by the next run. Returns the shard's folder.
    """
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, num_shards={num_shards}), got {shard_index}")
    final = shard_dir(output_dir, shard_index, num_shards)
    if final.is_dir():
        logger.info("shard %d of %d is already in %s: skipping it", shard_index, num_shards, final)
        return final
    tmp = final.with_name(f".tmp-{final.name}")
    cache = final.with_name(f".cache-{final.name}")
    for leftover in (tmp, cache):
        shutil.rmtree(leftover, ignore_errors=True)
    cache.mkdir(parents=True)
    # Contiguous shards concatenate back in the dataset's own row order.
    shard = dataset.shard(num_shards, shard_index, contiguous=True)
    result = transcribe_dataset(
        shard,
        asr,
        audio_column=audio_column,
        output_column=output_column,
        batch_size=batch_size,
        num_proc=num_proc,
        cache_file_name=str(cache / "transcripts.arrow"),
    )
    result.save_to_disk(str(tmp))
    os.replace(tmp, final)
    shutil.rmtree(cache, ignore_errors=True)
    logger.info("shard %d of %d: %d rows written to %s", shard_index, num_shards, len(result), final)
    return final


def merge_shards(output_dir: str | Path, num_shards: int) -> Path:
    """Concatenate the finished shards, in order, into ``output_dir/dataset`` and return that folder.

    An existing ``output_dir/dataset`` counts as done and is kept (delete it to merge again). Raises
    FileNotFoundError naming the shards that are not finished.
    """
    from datasets import concatenate_datasets, load_from_disk

    output_dir = Path(output_dir)
    target = output_dir / "dataset"
    if target.is_dir():
        logger.info("%s already exists: not merging again", target)
        return target
    missing = missing_shards(output_dir, num_shards)
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {num_shards} shards are not finished, e.g. "
            f"{shard_dir(output_dir, missing[0], num_shards)} (indices {missing}); transcribe them first"
        )
    merged = concatenate_datasets(
        [load_from_disk(str(shard_dir(output_dir, i, num_shards))) for i in range(num_shards)]
    )
    tmp = output_dir / ".tmp-dataset"
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_to_disk(str(tmp))
    os.replace(tmp, target)
    logger.info("merged %d shards (%d rows) into %s", num_shards, len(merged), target)
    return target
