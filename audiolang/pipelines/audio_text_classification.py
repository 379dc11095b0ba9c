"""The `audio-text-classification` pipeline: raw audio in, a label out, with the transcript the model read.

DSCLAP's deployment (and Turbo's, CTAL's, lrat's): the classifiers read a clip *and* its transcript, which at
inference time comes from a speech recogniser. A fine-tuned folder records two of them, each as a `{"spec", "kwargs"}`
JSON file next to any file it needs (e.g. pocketsphinx's domain language model), the way `Wav2Vec2ProcessorWithLM`
keeps its n-gram model in `language_model/`:

- `asr/asr_config.json`: the recogniser that made the training transcripts (`save_asr_config`, written by
  fine-tuning);
- `asr/inference/asr_config.json`, optional: the recogniser to run at inference (`save_inference_asr`), which may be
  another one: a recogniser that hears natural speech better than the one the training corpus was transcribed with.

The pipeline runs the inference recogniser, else the training one, so a caller brings only audio; `asr=` (when
building the pipeline or per call) overrides both. A caller who has transcripts passes them instead, and no
recogniser runs.

This module travels with saved folders for `trust_remote_code=True` (`save_custom_pipeline` copies it next to the
weights and lists it in `config.json`'s `custom_pipelines`), so it imports only transformers and numpy at the top. Recognisers come from the `audiolang` package, imported when one is first needed: without audiolang installed,
the pipeline classifies clips given with their transcripts.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoModelForSequenceClassification, Pipeline
from transformers.audio_utils import load_audio
from transformers.pipelines.text_classification import ClassificationFunction, sigmoid, softmax
from transformers.utils import cached_file, logging

__all__ = [
    "ASR_CONFIG_NAME",
    "ASR_FOLDER",
    "INFERENCE_ASR_FOLDER",
    "TASK",
    "AudioStream",
    "AudioTextClassificationPipeline",
    "load_audio_file",
    "load_saved_asr",
    "save_asr_config",
    "save_custom_pipeline",
    "save_inference_asr",
    "saved_asr_config",
    "saved_inference_asr_config",
]

TASK = "audio-text-classification"
# Where a saved folder records its training recogniser: `<folder>/asr/asr_config.json` = `{"spec": <load_asr spec>, "kwargs":
# {...}}`, with the files the kwargs name (paths relative to `<folder>/asr/`).
ASR_FOLDER = "asr"
ASR_CONFIG_NAME = "asr_config.json"
# The inference recogniser's record, laid out alike one level down (`<folder>/asr/inference/asr_config.json` and its
# files), so that its files never overwrite the training recogniser's (both may be a `domain.arpa`).
INFERENCE_ASR_FOLDER = f"{ASR_FOLDER}/inference"
# `load_asr` keyword arguments that name files; they are copied into the folder so that it is self-contained.
_FILE_KWARGS = ("lm_path", "dict_path")
# What transformers names an unnamed output (`PreTrainedConfig.id2label`'s default).
_DEFAULT_LABEL = "LABEL_0"

logger = logging.get_logger(__name__)


class AudioStream:
    """A clip that arrives in chunks, as a microphone delivers it: the pipeline classifies it once `chunks` ends.

    `classifier(AudioStream(microphone_chunks(), sampling_rate=16000))` reads every chunk as it comes and joins them;
    the recogniser and the classifier then run once on the whole clip, so the result is that of the joined clip
    passed at once. Nothing is decoded before the end, hence nothing twice: the recognisers cannot decode
    incrementally to the same result. Whisper's encoder attends over its whole window (every state depends on every
    frame, later ones included) and its decoder reads all of them; pocketsphinx decodes a whole utterance with its
    batch cepstral mean normalisation (the transcripts the classifiers were trained on), which its live mode
    replaces by a running estimate that gives other transcripts. docs/fast-inference.md says more.

    Args:
        chunks: An iterable (e.g. a generator) of 1-D waveform chunks (numpy arrays, lists or torch tensors).
        sampling_rate: Their rate; other rates than the model's are resampled once the clip is complete.
    """

    def __init__(self, chunks: Iterable[Any], sampling_rate: int) -> None:
        _check_sampling_rate(sampling_rate)
        self.chunks = chunks
        self.sampling_rate = sampling_rate

    def read(self) -> np.ndarray:
        """Every chunk, joined (it can be read once: the chunks are consumed)."""
        parts = []
        for index, chunk in enumerate(self.chunks):
            if hasattr(chunk, "detach"):  # a torch tensor
                chunk = chunk.detach().cpu().numpy()
            chunk = np.asarray(chunk)
            if chunk.ndim != 1 or not np.issubdtype(chunk.dtype, np.floating):
                raise ValueError(
                    f"chunk {index} of the audio stream has shape {chunk.shape} and dtype {chunk.dtype}: each chunk "
                    "must be a 1-D float waveform (mix channels down, and scale 16-bit PCM by 1/32768, first)."
                )
            parts.append(chunk.astype(np.float32, copy=False))
        if not parts:
            raise ValueError("the audio stream ended without a chunk: there is nothing to classify.")
        return np.concatenate(parts)


class AudioTextClassificationPipeline(Pipeline):
    """Classify speech with an audio+text sequence classifier of any audiolang family (`DsclapForSequenceClassification`,
    `TurboForSequenceClassification`, `CtalForSequenceClassification`, `LratForSequenceClassification`).

    Each clip is classified together with its transcript: the one passed with it (`transcript=`), or, when none is,
    what a speech recogniser hears: the `asr=` of the call, else the pipeline's `asr=`, else the folder's inference
    recogniser (`asr/inference/asr_config.json`, `save_inference_asr`), else the one that transcribed its training
    data (`asr/asr_config.json`, recorded at fine-tuning time). The recogniser runs once per clip, on a whole batch at
    a time (`batch_size`).

    Example:

    ```python
    >>> from transformers import pipeline
    >>> classifier = pipeline("audio-text-classification", model="out/dsclap-intent", trust_remote_code=True)
    >>> classifier("clip.wav")
    {'label': 'navigation', 'score': 0.93, 'transcript': 'navigate to the nearest gas station'}
    >>> classifier(waveform, sampling_rate=16000, transcript="open the window", top_k=2)
    [{'label': 'windows', 'score': 0.88, 'transcript': 'open the window'}, {'label': 'climate', ...}]
    >>> classifier("clip.wav", asr="whisper-tiny.en")  # another recogniser for this call only
    ```

    Args:
        model: A `*ForSequenceClassification` model of an audiolang family.
        processor: The family's joint processor (loaded from the folder by `pipeline(...)`).
        asr (`str`, `(spec, kwargs)` or `ASRBackend`, *optional*): The recogniser for clips given without a
            transcript: a `audiolang.load_asr` spec (`"pocketsphinx"`, `"whisper-tiny.en"`, ...), a spec with its
            `load_asr` keyword arguments (`("pocketsphinx", {"lm_path": ..., "dict_path": ...})`, what
            `saved_asr_config` returns), or a ready back-end. Defaults to the model folder's inference recogniser,
            else its training one. Also accepted per call, for that call only.
        truncate_audio (`bool`, *optional*, defaults to `True`): Keep the first `max_audio_samples` samples of
            longer clips (the processor's limit, what fine-tuning did) instead of raising.
        share_encoder (`bool`, *optional*, defaults to `False`): With a Whisper recogniser (`WhisperASR`) whose
            encoder is, wholly or in its lower layers, the classifier's audio tower (compared weight for weight,
            once), encode each clip once for both: the classifier then reads the clip's frames of the recogniser's
            window (the clip followed by silence) instead of encoding the clip alone. Elsewhere (another
            recogniser, other weights, clips given with transcripts) the two passes run, and a warning says why.
            See `audiolang.pipelines.shared_encoder` and docs/fast-inference.md.
        classifier (*optional*): A runtime that stands in for the model's forward, e.g. an ONNX export
            (`audiolang.export.OnnxSequenceClassifier`): called with the processor's tensors as keyword arguments,
            it returns an object with `logits`. The model still supplies the config (labels) and the processor.
        batch_size, device, dtype, ...: as for every transformers pipeline.

    A clip that arrives in chunks (a microphone) is passed as an `AudioStream`; it is classified once it ends.
    """

    _load_processor = True
    _load_feature_extractor = False
    _load_image_processor = False
    _load_tokenizer = False

    def __init__(
        self, *args: Any, asr: Any = None, share_encoder: bool = False, classifier: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if classifier is not None and not callable(classifier):
            raise ValueError(
                f"`classifier` must be callable like the model (e.g. an `OnnxSequenceClassifier`), got {classifier!r}."
            )
        self._classifier = classifier
        self._share_encoder = share_encoder
        # Per recogniser (by id): what its encoder shares with the audio tower (`EncoderSharing`), or why nothing.
        self._sharing: dict[int, Any] = {}
        if self.processor is None or self.tokenizer is None or self.feature_extractor is None:
            raise ValueError(
                "`processor` is required: pass the model folder's joint audio+text processor, e.g. "
                "`processor=AutoProcessor.from_pretrained(folder)`."
            )
        # The folder's records, kept so that `save_pretrained` writes them again.
        self._training_asr_spec = saved_asr_config(self.model.name_or_path)
        self._inference_asr_spec = saved_inference_asr_config(self.model.name_or_path)
        # Recognisers built from `(spec, kwargs)`, by `_asr_key`: built once, on first use, whichever call asks.
        self._recognisers: dict[str, Any] = {}
        # The default recogniser: what it is built from, `(spec, kwargs)`, when known (not for a ready back-end).
        asr = _check_asr(asr)
        if asr is None:
            self._asr_spec, self._asr = self._inference_asr_spec or self._training_asr_spec, None
        elif isinstance(asr, tuple):
            self._asr_spec, self._asr = asr, None
        else:
            self._asr_spec, self._asr = None, asr

    @property
    def sampling_rate(self) -> int:
        """The rate the model takes; other audio is resampled to it."""
        return int(self.feature_extractor.sampling_rate)

    @property
    def asr(self) -> Any:
        """The default speech recogniser for clips without a transcript (loaded on first use), or None if there is
        none."""
        if self._asr is None and self._asr_spec is not None:
            self._asr = self._recogniser_of(self._asr_spec)
        return self._asr

    def _recogniser_of(self, spec_and_kwargs: tuple[str, dict[str, Any]]) -> Any:
        """The recogniser built from `(spec, kwargs)`, built on first use and kept: a per-call `asr=` does not reload
        it on every call."""
        key = _asr_key(spec_and_kwargs)
        if key not in self._recognisers:
            spec, kwargs = spec_and_kwargs
            self._recognisers[key] = _import_load_asr(f"the speech recogniser {spec!r}")(spec, **kwargs)
        return self._recognisers[key]

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Save the model, its processor and this pipeline's code (`Pipeline.save_pretrained`: listed in
        `custom_pipelines`), the folder's training recogniser (`save_asr_config`) and the pipeline's default
        recogniser as the inference one (`save_inference_asr`) where it is not the training one, so that the copy
        transcribes alike and still says what made its training transcripts."""
        super().save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory, **kwargs)
        if self._training_asr_spec is not None:
            save_asr_config(save_directory, self._training_asr_spec[0], **self._training_asr_spec[1])
        # A recogniser given as an instance cannot be recorded: the copy keeps the folder's own inference record.
        inference = self._inference_asr_spec if self._asr_spec is None else self._asr_spec
        if inference is not None and inference != self._training_asr_spec:
            save_inference_asr(save_directory, inference[0], **inference[1])
        if self._asr_spec is None and self._asr is not None:
            logger.warning(
                "the recogniser %r was given as an instance: it is not saved with the pipeline; record it with "
                "`save_inference_asr(%r, spec, ...)`",
                self._asr,
                os.fspath(save_directory),
            )

    def __call__(self, inputs: Any, transcript: str | Iterable[str] | None = None, **kwargs: Any) -> Any:
        """Classify one clip or a list of clips.

        Args:
            inputs: One clip or a list of clips, each:
                - a 1-D float waveform (numpy array, torch tensor or list) at `sampling_rate`;
                - `{"raw": waveform, "sampling_rate": sr}` or `{"array": ..., "sampling_rate": ...}` (a decoded
                  `datasets` `Audio` value), resampled to the model's rate if needed;
                - the path (or URL) of an audio file, decoded and resampled;
                - a `datasets` `Audio` value as datasets 4+ decodes it (a torchcodec `AudioDecoder`);
                - `{"audio": <any of the above>, "transcript": str}` to pair a clip with its transcript.
                A `datasets.Dataset` or a generator of such items streams the results.
            transcript: The transcript of the clip, or one per clip of a list (in order). Without it, the
                pipeline's recogniser transcribes the clips.
            asr (`str`, `(spec, kwargs)` or `ASRBackend`, *optional*): The recogniser for this call's clips without a
                transcript, instead of the pipeline's (see the class); one given as a spec is built on first use and
                kept for later calls.
            sampling_rate (`int`): The rate of bare waveforms (required for them).
            top_k (`int` or `None`, *optional*, defaults to 1): How many labels to return per clip, best first;
                `None` returns all. With `top_k=1` each result is one dict, otherwise a list of dicts.
            function_to_apply (`str`, *optional*): `"softmax"`, `"sigmoid"` or `"none"`, applied to the logits;
                by default `"none"` for regression, `"sigmoid"` for multi-label and `"softmax"` otherwise (as the
                text-classification pipeline).
            truncate_audio (`bool`, *optional*): See the class.

        Returns:
            Per clip, `{"label": str, "score": float, "transcript": str}` (a list of them with `top_k != 1`). For a
            regression model the score is the predicted value, and the label is the config's name for it
            (`id2label[0]`) or `"score"`.
        """
        if transcript is not None:
            inputs = _pair_with_transcripts(inputs, transcript)
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(
        self,
        sampling_rate: int | None = None,
        top_k: int | None | str = "",
        function_to_apply: str | None = None,
        truncate_audio: bool | None = None,
        asr: Any = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        if kwargs:
            raise ValueError(
                f"unknown argument(s) {sorted(kwargs)}: the audio-text-classification pipeline takes "
                "`transcript`, `sampling_rate`, `top_k`, `function_to_apply`, `truncate_audio` and `asr`."
            )
        preprocess_params: dict[str, Any] = {}
        forward_params: dict[str, Any] = {}
        postprocess_params: dict[str, Any] = {}
        if sampling_rate is not None:
            preprocess_params["sampling_rate"] = sampling_rate
        if truncate_audio is not None:
            forward_params["truncate_audio"] = truncate_audio
        if asr is not None:
            forward_params["asr"] = _check_asr(asr)
        # "" is "not given", so that `top_k=None` can mean "every label", as in the text-classification pipeline.
        if top_k != "":
            if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
                raise ValueError(f"`top_k` must be a positive integer or None (every label), got {top_k!r}.")
            postprocess_params["top_k"] = top_k
        if function_to_apply is not None:
            try:
                postprocess_params["function_to_apply"] = ClassificationFunction(
                    str(function_to_apply).lower()
                )
            except ValueError:
                raise ValueError(
                    f"`function_to_apply` must be one of 'softmax', 'sigmoid', 'none', got {function_to_apply!r}."
                ) from None
        return preprocess_params, forward_params, postprocess_params

    def preprocess(self, inputs: Any, sampling_rate: int | None = None) -> dict[str, Any]:
        transcript = None
        if isinstance(inputs, dict) and "audio" in inputs:
            transcript = inputs.get("transcript")
            if transcript is not None and not isinstance(transcript, str):
                raise ValueError(f"`transcript` must be a string, got {type(transcript).__name__}.")
            inputs = inputs["audio"]
        return {"audio": self._waveform(inputs, sampling_rate), "transcript": transcript}

    def _waveform(self, audio: Any, sampling_rate: int | None) -> np.ndarray:
        """One input as a waveform at the model's rate. Its content (mono, finite, not silent, ...) is checked by the
        processor's feature extractor, the one validator of every audiolang front end."""
        if isinstance(audio, AudioStream):
            audio, sampling_rate = audio.read(), audio.sampling_rate
        elif isinstance(audio, (str, os.PathLike)):
            audio = os.fspath(audio)
            if os.path.isdir(audio):
                raise ValueError(
                    f"audio file {audio!r} is a folder: pass the path of one audio file (or a waveform). To predict "
                    f"every file of a folder: python run_scripts/run_predict.py --audio_dir {audio} ..."
                )
            if not audio.startswith(("http://", "https://")) and not os.path.isfile(audio):
                raise ValueError(
                    f"audio file {audio!r} does not exist: pass the path of an audio file or a waveform."
                )
            return load_audio_file(audio, self.sampling_rate)
        # A `datasets` Audio value (torchcodec `AudioDecoder`): torchcodec is then imported already.
        torchcodec = sys.modules.get("torchcodec")
        if torchcodec is not None and isinstance(audio, torchcodec.decoders.AudioDecoder):
            samples = audio.get_all_samples()
            # Channels first; mixed down by their mean, as datasets' own `value["array"]` does.
            audio = {"array": samples.data.numpy().mean(axis=0), "sampling_rate": samples.sample_rate}
        if isinstance(audio, dict):
            key = next((k for k in ("raw", "array") if k in audio), None)
            if key is None or "sampling_rate" not in audio:
                raise ValueError(
                    "an audio dict needs the waveform under 'raw' (or 'array', as `datasets` decodes it) and its "
                    f"'sampling_rate', e.g. {{'raw': waveform, 'sampling_rate': 16000}}; got keys {sorted(audio)}."
                )
            audio, sampling_rate = audio[key], audio["sampling_rate"]
        elif sampling_rate is None:
            raise ValueError(
                f"`sampling_rate` is required with a bare waveform: pass `sampling_rate={self.sampling_rate}` (other "
                "rates are resampled), or the clip as {'raw': waveform, 'sampling_rate': sr}."
            )
        if hasattr(audio, "detach"):  # a torch tensor
            audio = audio.detach().cpu().numpy()
        audio = np.asarray(audio)
        _check_sampling_rate(sampling_rate)
        # Only real, finite samples are resampled (a cast would hide a bad dtype, and resampling spreads a NaN over
        # its neighbours): the feature extractor refuses the rest as given, naming what is wrong.
        resample = sampling_rate != self.sampling_rate and audio.ndim == 1 and audio.size
        if resample and audio.dtype.kind in "iuf" and np.isfinite(audio).all():
            audio = _resample(audio, sampling_rate, self.sampling_rate)
        return audio

    def _forward(
        self, model_inputs: dict[str, Any], truncate_audio: bool = True, asr: Any = None
    ) -> dict[str, Any]:
        # Batched (`batch_size > 1`): lists of clips and transcripts; unbatched: one clip and its transcript.
        batched = isinstance(model_inputs["audio"], list)
        clips = model_inputs["audio"] if batched else [model_inputs["audio"]]
        transcripts = list(model_inputs["transcript"]) if batched else [model_inputs["transcript"]]
        missing = [i for i, text in enumerate(transcripts) if text is None]
        audio_pooler_output = None
        if missing:
            recogniser = self._recogniser(asr)
            sharing = self._sharing_with(recogniser) if len(missing) == len(clips) else None
            if sharing is not None:
                heard, audio_pooler_output = _import_shared_encoder().transcribe_and_pool(
                    recogniser, self.model, self.feature_extractor, sharing, clips, truncate_audio
                )
            else:
                # One recogniser call for the batch's clips that came without a transcript.
                heard = recogniser.transcribe([clips[i] for i in missing], self.sampling_rate)
            for i, text in zip(missing, heard, strict=True):
                transcripts[i] = text
        # What fine-tuning does (DataCollatorForAudioText): a recogniser that heard nothing is evidence too, and an
        # empty transcript is read as the tokenizer's unknown token.
        texts = [text if text.strip() else self.tokenizer.unk_token for text in transcripts]
        if audio_pooler_output is not None:
            # The audio was encoded with the recogniser's pass: the model reads its pooled frames and the text.
            inputs = dict(
                self.processor(text=texts, return_tensors="pt"), audio_pooler_output=audio_pooler_output
            )
            logits = self.model(**self._ensure_tensor_on_device(inputs, self.device)).logits
            return {"logits": logits, "transcript": transcripts if batched else transcripts[0]}
        inputs = self.processor(
            audio=clips,
            text=texts,
            sampling_rate=self.sampling_rate,
            truncate_audio=truncate_audio,
            return_tensors="pt",
        )
        if self.dtype is not None:
            inputs = inputs.to(dtype=self.dtype)  # floating-point tensors only
        forward = self.model if self._classifier is None else self._classifier
        logits = forward(**self._ensure_tensor_on_device(dict(inputs), self.device)).logits
        return {"logits": logits, "transcript": transcripts if batched else transcripts[0]}

    def _sharing_with(self, recogniser: Any) -> Any:
        """What `recogniser`'s encoder shares with the audio tower (an `EncoderSharing`), when `share_encoder` is on
        and it shares something; else None (the two passes run). Weighed once per recogniser; why nothing is shared
        is logged once."""
        if not self._share_encoder:
            return None
        key = id(recogniser)
        if key not in self._sharing:
            shared_encoder = _import_shared_encoder()
            obstacle = shared_encoder.sharing_obstacle(recogniser, self.model)
            if obstacle is None and self._classifier is not None:
                obstacle = "a classifier runtime (`classifier=`) encodes the audio itself"
            sharing = None
            if obstacle is None:
                sharing = shared_encoder.encoder_sharing(recogniser.encoder, self.model.audio_model)
                if sharing is None:
                    obstacle = (
                        "its encoder's convolution stem or config is not the classifier's audio tower's"
                    )
            if obstacle is not None:
                logger.warning("share_encoder: two encoder passes, because %s.", obstacle)
            self._sharing[key] = (recogniser, sharing)  # the recogniser is kept so that its id is not reused
        return self._sharing[key][1]

    def _recogniser(self, asr: Any = None) -> Any:
        """The call's recogniser (`asr`: `(spec, kwargs)` or a back-end, as `_check_asr` returns it), else the
        pipeline's."""
        asr = self.asr if asr is None else self._recogniser_of(asr) if isinstance(asr, tuple) else asr
        if asr is None:
            raise ValueError(
                f"no transcript was given and {self.model.name_or_path!r} records no speech recogniser "
                f"(no {ASR_FOLDER}/{ASR_CONFIG_NAME} nor {INFERENCE_ASR_FOLDER}/{ASR_CONFIG_NAME}: it was "
                "fine-tuned on manual transcripts, or saved without one). Pass each clip's transcript "
                "(`transcript=`), or a recogniser: `asr='pocketsphinx'` or another `audiolang.load_asr` spec, or an "
                "`ASRBackend` instance."
            )
        if asr.sampling_rate != self.sampling_rate:
            raise ValueError(
                f"the recogniser {asr!r} takes {asr.sampling_rate} Hz audio but the model {self.sampling_rate} Hz: "
                "pass `asr=` a recogniser at the model's rate."
            )
        return asr

    def postprocess(
        self,
        model_outputs: dict[str, Any],
        top_k: int | None = 1,
        function_to_apply: ClassificationFunction | None = None,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        config = self.model.config
        transcript = model_outputs["transcript"]
        logits = model_outputs["logits"][0].float().numpy()
        regression = config.problem_type == "regression" or (
            config.problem_type is None and config.num_labels == 1
        )
        if function_to_apply is None:
            if regression:
                function_to_apply = ClassificationFunction.NONE
            elif config.problem_type == "multi_label_classification":
                function_to_apply = ClassificationFunction.SIGMOID
            else:
                function_to_apply = ClassificationFunction.SOFTMAX
        scores = {
            ClassificationFunction.SOFTMAX: softmax,
            ClassificationFunction.SIGMOID: sigmoid,
            ClassificationFunction.NONE: lambda x: x,
        }[function_to_apply](logits)
        if regression:
            name = config.id2label.get(0, _DEFAULT_LABEL)
            return {
                "label": "score" if name == _DEFAULT_LABEL else name,
                "score": float(scores[0]),
                "transcript": transcript,
            }
        order = np.argsort(-scores, kind="stable")[: None if top_k is None else top_k]
        results = [
            {"label": config.id2label[int(i)], "score": float(scores[i]), "transcript": transcript}
            for i in order
        ]
        return results[0] if top_k == 1 else results


def _check_asr(asr: Any) -> tuple[str, dict[str, Any]] | Any:
    """An `asr=` value as `(spec, kwargs)` (a spec alone has no kwargs), a back-end as it is, None as None; anything
    else is refused with the forms that are accepted."""
    if asr is None or hasattr(asr, "transcribe"):
        return asr
    if isinstance(asr, str):
        return asr, {}
    if (
        isinstance(asr, (tuple, list))
        and len(asr) == 2
        and isinstance(asr[0], str)
        and isinstance(asr[1], dict)
    ):
        return asr[0], dict(asr[1])
    raise ValueError(
        f"`asr` must be an `audiolang.load_asr` spec (e.g. 'whisper-tiny.en'), a `(spec, kwargs)` pair or a "
        f"recogniser with a `transcribe` method (an `ASRBackend`), got {asr!r}."
    )


def _asr_key(spec_and_kwargs: tuple[str, dict[str, Any]]) -> str:
    """What tells recognisers apart: the spec and its `load_asr` keyword arguments."""
    return json.dumps(list(spec_and_kwargs), sort_keys=True, default=str)


def _pair_with_transcripts(inputs: Any, transcript: str | Iterable[str]) -> Any:
    """`{"audio": clip, "transcript": text}` items: a transcript per clip, in order."""
    if isinstance(inputs, list):
        if isinstance(transcript, str) or not isinstance(transcript, Iterable):
            raise ValueError(
                f"`inputs` is a list of {len(inputs)} clips: pass `transcript` as a list of as many strings, in "
                "the same order."
            )
        transcript = list(transcript)  # e.g. a `datasets` column
        if len(transcript) != len(inputs):
            raise ValueError(
                f"`inputs` has {len(inputs)} clips but `transcript` has {len(transcript)} transcripts: pass one "
                "transcript per clip, in the same order."
            )
        return [{"audio": clip, "transcript": text} for clip, text in zip(inputs, transcript, strict=True)]
    if not isinstance(transcript, str):
        raise ValueError(
            f"`transcript` must be a string for a single clip, got {type(transcript).__name__}; for several "
            "clips pass `inputs` as a list."
        )
    return {"audio": inputs, "transcript": transcript}


def load_audio_file(path: str | os.PathLike, sampling_rate: int) -> np.ndarray:
    """Mono float32 samples of an audio file (or `http(s)://` URL) at `sampling_rate`: the one file reader of the
    pipeline and the demo app.

    Files that libsndfile decodes (WAV, FLAC, OGG, MP3: what the corpus is made of) go through soundfile and `soxr`,
    the resampler of `librosa.load`, of the corpus builder and of waveforms given at another rate (`_resample`), so
    that a file is read exactly as its training copy was; containers it cannot decode (M4A, MP4, WebM: what browsers
    and phones record) go through torchcodec (ffmpeg).
    """
    path = os.fspath(path)
    checks = _audio_file_checks()
    try:
        try:
            waveform = load_audio(path, sampling_rate=sampling_rate, backend="soundfile")
        except RuntimeError:  # transformers' "soundfile cannot decode" and soundfile's own LibsndfileError
            waveform = load_audio(path, sampling_rate=sampling_rate, backend="torchcodec")
    except Exception as error:  # noqa: BLE001 (decoders raise RuntimeError, OSError, ValueError, ...)
        reason = checks.decode_error_message(error) if checks else next(iter(str(error).splitlines()), "")
        raise ValueError(
            f"audio file {path!r} cannot be decoded ({reason}): pass an audio file (WAV, FLAC, MP3, OGG, "
            "M4A, ...)."
        ) from error
    local = checks is not None and not path.startswith(("http://", "https://"))
    if local and (truncated := checks.truncation_problem(path, waveform.size / sampling_rate)):
        logger.warning("audio file %r is %s: only that part is classified", path, truncated)
    return waveform


def _audio_file_checks() -> Any:
    """audiolang's `audio_utils` (decoder messages, truncated files), or None where audiolang is not installed."""
    # In a try block: transformers' `trust_remote_code` import check skips it, so the module loads without audiolang.
    try:
        from audiolang import audio_utils
    except ImportError:
        return None
    return audio_utils


def _check_sampling_rate(sampling_rate: Any) -> None:
    # A string, a fraction of a hertz or a bool is a caller's bug, not a rate to resample from.
    whole = isinstance(sampling_rate, (int, np.integer)) and not isinstance(sampling_rate, bool)
    if not whole or sampling_rate <= 0:
        raise ValueError(
            f"`sampling_rate` must be a positive integer (Hz), got {sampling_rate!r}: pass the rate the audio was "
            "recorded at, e.g. `sampling_rate=16000`."
        )


def _resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """`soxr`'s high-quality resampler: what `librosa.resample` (audiolang's corpus builder) and transformers'
    `load_audio` (audio files) use."""
    try:
        import soxr
    except ImportError:
        raise ValueError(
            f"the audio is at {orig_sr} Hz and the model takes {target_sr} Hz: resampling it needs `soxr` "
            f"(pip install soxr), or resample it first."
        ) from None
    return soxr.resample(audio.astype(np.float32, copy=False), orig_sr, target_sr, quality="soxr_hq")


def _import_shared_encoder() -> Any:
    # In a try block, as `_import_load_asr`: the module also serves folders loaded without audiolang installed.
    try:
        from audiolang.pipelines import shared_encoder
    except ImportError:
        raise ValueError(
            "`share_encoder=True` needs the `audiolang` package, which is not installed: `pip install audiolang`, or "
            "build the pipeline without `share_encoder`."
        ) from None
    return shared_encoder


def _import_load_asr(needed_for: str) -> Any:
    # In a try block: transformers' `trust_remote_code` import check skips it, so the module loads without audiolang.
    try:
        from audiolang.data.asr import load_asr
    except ImportError:
        raise ValueError(
            f"{needed_for} needs the speech recognisers of the `audiolang` package, which is not installed: "
            "`pip install audiolang`, or pass each clip's transcript (`transcript=`)."
        ) from None
    return load_asr


def saved_asr_config(name_or_path: str | os.PathLike) -> tuple[str, dict[str, Any]] | None:
    """The speech recogniser that made a model folder's (or Hub repository's) training transcripts, as it records it
    in `asr/asr_config.json`: `(spec, kwargs)` for `audiolang.load_asr`, with the files it names resolved to local
    paths (downloaded from the Hub for a repository id); None when it records none (or for a model that was not
    loaded from a folder)."""
    return _saved_record(name_or_path, ASR_FOLDER)


def saved_inference_asr_config(name_or_path: str | os.PathLike) -> tuple[str, dict[str, Any]] | None:
    """The speech recogniser a model folder (or Hub repository) names for inference in
    `asr/inference/asr_config.json` (`save_inference_asr`), as `saved_asr_config` returns it; None when it names none
    (the pipeline then runs the training recogniser)."""
    return _saved_record(name_or_path, INFERENCE_ASR_FOLDER)


def _saved_record(name_or_path: str | os.PathLike, subfolder: str) -> tuple[str, dict[str, Any]] | None:
    if not os.fspath(name_or_path):
        return None
    config_file = _asr_file(name_or_path, subfolder, ASR_CONFIG_NAME, required=False)
    if config_file is None:
        return None
    record = json.loads(Path(config_file).read_text())
    kwargs = dict(record.get("kwargs", {}))
    for key in _FILE_KWARGS:
        if kwargs.get(key) is not None:
            kwargs[key] = _asr_file(name_or_path, subfolder, kwargs[key], required=True)
    return record["spec"], kwargs


def load_saved_asr(name_or_path: str | os.PathLike) -> Any:
    """The speech recogniser the pipeline of a model folder runs by default, built with `audiolang.load_asr`: its
    inference recogniser (`saved_inference_asr_config`), else its training one (`saved_asr_config`); None when it
    records neither."""
    saved = saved_inference_asr_config(name_or_path) or saved_asr_config(name_or_path)
    if saved is None:
        return None
    spec, kwargs = saved
    return _import_load_asr(f"the speech recogniser of {os.fspath(name_or_path)!r} ({spec})")(spec, **kwargs)


def _asr_file(name_or_path: str | os.PathLike, subfolder: str, filename: str, required: bool) -> str | None:
    """A file of the folder's `subfolder` (downloaded from the Hub for a repository id)."""
    return cached_file(
        os.fspath(name_or_path),
        filename,
        subfolder=subfolder,
        _raise_exceptions_for_missing_entries=required,
        _raise_exceptions_for_connection_errors=required,
    )


def save_asr_config(save_directory: str | os.PathLike, spec: str, **kwargs: Any) -> Path:
    """Record in a saved model folder the speech recogniser that made its training transcripts, for the pipeline.

    Writes `<save_directory>/asr/asr_config.json` (`{"spec": spec, "kwargs": kwargs}`, what `audiolang.load_asr(spec,
    **kwargs)` takes) and copies the files that `lm_path` / `dict_path` name (pocketsphinx's domain language model and
    its dictionary) into `asr/`, so that the folder (and a Hub repository uploaded from it) is self-contained. Other
    arguments must be JSON values; a spec that names a local folder (`"whisper:/path"`) is recorded as it is. The
    pipeline runs this recogniser unless the folder names another for inference (`save_inference_asr`).

    Returns the path of `asr_config.json`.
    """
    return _save_record(Path(save_directory) / ASR_FOLDER, spec, kwargs)


def save_inference_asr(save_directory: str | os.PathLike, spec: str, **kwargs: Any) -> Path:
    """Name in a saved model folder the speech recogniser its pipeline runs on clips given without a transcript, when
    it is not the one that made the training transcripts (`save_asr_config`, which stays recorded): e.g. Whisper for
    a classifier fine-tuned on pocketsphinx transcripts, for natural speech that Whisper hears better.

    Writes `<save_directory>/asr/inference/asr_config.json` and copies the files it names into `asr/inference/`, as
    `save_asr_config` does for the training recogniser. `pipeline("audio-text-classification", model=folder)` then
    runs it by default; `asr=` (when building the pipeline or per call) still overrides it.

    Returns the path of the written `asr_config.json`.
    """
    return _save_record(Path(save_directory) / INFERENCE_ASR_FOLDER, spec, kwargs)


def _save_record(folder: Path, spec: str, kwargs: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    recorded = dict(kwargs)
    for key in _FILE_KWARGS:
        if recorded.get(key) is not None:
            source = Path(recorded[key])
            if not source.is_file():
                raise ValueError(f"`{key}` {str(source)!r} is not a file: pass the recogniser's {key} file.")
            target = folder / source.name
            if not (target.exists() and target.samefile(source)):  # re-saving a folder onto itself
                shutil.copyfile(source, target)
            recorded[key] = source.name
    config_file = folder / ASR_CONFIG_NAME
    config_file.write_text(json.dumps({"spec": spec, "kwargs": recorded}, indent=2, sort_keys=True) + "\n")
    return config_file


def save_custom_pipeline(save_directory: str | os.PathLike) -> None:
    """Make a saved sequence-classification folder serve `pipeline("audio-text-classification", model=folder,
    trust_remote_code=True)` where audiolang is not installed (and from the Hub).

    What `Pipeline.save_pretrained` does for a registered pipeline, without saving the weights again: the task goes
    into `config.json`'s `custom_pipelines` and this module is copied next to the weights.
    """
    folder = Path(save_directory)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ValueError(f"{str(folder)!r} has no config.json: save the model (`save_pretrained`) first.")
    config = json.loads(config_file.read_text())
    config["custom_pipelines"] = {
        **config.get("custom_pipelines", {}),
        TASK: {
            "impl": f"{Path(__file__).stem}.{AudioTextClassificationPipeline.__name__}",
            "pt": [AutoModelForSequenceClassification.__name__],
            "type": "multimodal",
        },
    }
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    shutil.copyfile(__file__, folder / Path(__file__).name)
