"""Saved folders that load with every Auto class of their family, with or without audiolang installed.

`save_pretrained` records in `config.json`'s `auto_map` only `AutoConfig` and the Auto class of the model being
saved, so a `CtalForPreTraining` folder would load with `AutoModelForPreTraining` but not with `AutoModel` where
audiolang is not installed (`trust_remote_code=True`), while with audiolang installed the registrations make both
work. `FamilyAutoMapMixin` makes the two agree.

A flat sibling of the modeling modules (imports nothing from `audiolang`), so that it travels with a checkpoint
loaded through `trust_remote_code=True`.
"""

import os
import sys
from typing import Any

from transformers import PreTrainedModel

__all__ = ["FamilyAutoMapMixin", "family_auto_map"]


def family_auto_map(model_class: type[PreTrainedModel]) -> dict[str, str]:
    """`{Auto class: "module.Class"}` for every model class defined in `model_class`'s module for the same config
    class that declares an Auto class (`register_for_auto_class`)."""
    module = sys.modules[model_class.__module__]
    module_name = model_class.__module__.rsplit(".", 1)[-1]
    return {
        cls._auto_class: f"{module_name}.{cls.__name__}"
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, PreTrainedModel)
        and cls.__module__ == model_class.__module__
        and cls.config_class is model_class.config_class
        and getattr(cls, "_auto_class", None) is not None
    }


class FamilyAutoMapMixin:
    """For a family's `PreTrainedModel` base: `save_pretrained` lists each Auto class of the family in `auto_map`."""

    config_class: Any
    config: Any

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> Any:
        self.config.auto_map = {
            **(getattr(self.config, "auto_map", None) or {}),
            **family_auto_map(type(self)),
        }
        return super().save_pretrained(save_directory, *args, **kwargs)
