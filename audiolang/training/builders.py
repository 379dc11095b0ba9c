"""Building a family's model and processor for pre-training (from a preset and, where given, pretrained encoders),
and checking that a saved model is of the family a run expects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PreTrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    ProcessorMixin,
)

from ..configuration_ctal import CtalConfig
from ..configuration_dsclap import DsclapConfig
from ..conversion import resolve_pretrained
from ..dual_encoder import text_encoder_kwargs
from ..modeling_ctal import CtalForPreTraining
from ..modeling_dsclap import DsclapModel
from ..processing_ctal import CtalProcessor
from ..processing_dsclap import DsclapProcessor


def build_dsclap(
    text_model_name_or_path: str,
    audio_model_name_or_path: str | None = None,
    preset: str = "tiny",
    **config_overrides: Any,
) -> tuple[DsclapModel, DsclapProcessor]:
    """A DSCLAP model and its processor around a pretrained text encoder (any transformers text model: BERT,
    DistilBERT, RoBERTa, ...; its tokenizer comes from the same path).

    With `audio_model_name_or_path`, both encoders are pretrained: this is `DsclapModel.from_audio_text_pretrained`,
    and `preset` gives only the fields other than the encoders (e.g. `projection_dim`). Without it, the audio encoder is `preset`'s, randomly initialised (no pretrained
    speech encoder is needed to pre-train on raw audio). `config_overrides` update the `DsclapConfig` (e.g.
    `num_hard_negatives=4`, `contrastive_weight=0.3`).
    """
    # Hub ids of models that ship in registry packages (all-MiniLM-L6-v2, Whisper) resolve to the installed copy.
    text_path = resolve_pretrained(text_model_name_or_path)
    if audio_model_name_or_path is not None:
        model = DsclapModel.from_audio_text_pretrained(
            resolve_pretrained(audio_model_name_or_path), text_path, preset=preset, **config_overrides
        )
    else:
        # A config object replaces the preset's text tower wholesale (a dict would be merged into it).
        config = DsclapConfig.from_preset(
            preset, text_config=AutoConfig.from_pretrained(text_path), **config_overrides
        )
        text_model = AutoModel.from_pretrained(
            text_path, config=config.text_config, **text_encoder_kwargs(config.text_config)
        )
        model = DsclapModel(config, text_model=text_model)
    processor = DsclapProcessor.from_config(model.config, AutoTokenizer.from_pretrained(text_path))
    return model, processor


def parse_config_overrides(overrides: str | None, config_class: type[PreTrainedConfig]) -> dict[str, Any]:
    """`"num_frozen_audio_layers=5,freeze_audio_feature_encoder=true"` (the `--config_overrides` of transformers'
    example scripts) as typed keyword arguments of `config_class`: each value takes the type of the field's default,
    through `PreTrainedConfig.update_from_string`, which also rejects a key the config does not have."""
    if not overrides:
        return {}
    config = config_class()
    try:
        config.update_from_string(overrides)
    except ValueError as error:
        raise ValueError(
            f"--config_overrides {overrides!r}: {error} (format: key=value,key=value)"
        ) from error
    return {
        key.split("=", 1)[0].strip(): getattr(config, key.split("=", 1)[0].strip())
        for key in overrides.split(",")
    }


def build_from_tokenizer(
    config_class: type[PreTrainedConfig],
    model_class: type[PreTrainedModel],
    processor_class: type[ProcessorMixin],
    tokenizer: PreTrainedTokenizerBase,
    preset: str = "tiny",
    **config_overrides: Any,
) -> tuple[PreTrainedModel, ProcessorMixin]:
    """A randomly initialised model of `config_class`'s `preset`, sized to `tokenizer` (its vocabulary and
    special-token ids), and `processor_class.from_config(config, tokenizer)`: the families that pre-train both
    streams from scratch around a tokenizer of their own (CTAL, LRAT). `config_overrides` update the config."""
    config = config_class.from_preset(
        preset,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        mask_token_id=tokenizer.mask_token_id,
        **config_overrides,
    )
    return model_class(config), processor_class.from_config(config, tokenizer)


def build_ctal(
    tokenizer: PreTrainedTokenizerBase, preset: str = "tiny", **config_overrides: Any
) -> tuple[CtalForPreTraining, CtalProcessor]:
    """A randomly initialised CTAL pre-training model of `preset` and its processor, sized to `tokenizer` (e.g. from
    `train_ctal_tokenizer`). CTAL pre-trains both streams from scratch (the paper's Sec. 3.2)."""
    return build_from_tokenizer(
        CtalConfig, CtalForPreTraining, CtalProcessor, tokenizer, preset, **config_overrides
    )


def check_model_family(model_name_or_path: str, families: Sequence[str], option: str = "--model_type") -> str:
    """The `model_type` of a saved model (folder or hub id), which must be one of `families` (the first is the one
    asked for): a folder of another family would otherwise load as a randomly initialised model of the asked one
    and fail at the first step."""
    try:
        config_dict, _ = PreTrainedConfig.get_config_dict(model_name_or_path)
    except OSError as error:
        raise ValueError(
            f"{model_name_or_path!r} is not a saved model (no readable config.json): {error}"
        ) from error
    found = config_dict.get("model_type")
    if found is None:
        raise ValueError(f"{model_name_or_path!r} is not a saved model (no config.json with a model_type).")
    if found not in families:
        raise ValueError(
            f"{model_name_or_path!r} holds a {found} model, not {families[0]}: pass {option} {found}, or a folder "
            f"of a {' or '.join(families)} model."
        )
    return found
