"""Named architectures: how every family's `Config.from_preset` merges a preset with overrides.

A flat sibling of the configuration modules (imports nothing from `audiolang`), so that it travels with a checkpoint
loaded through `trust_remote_code=True`.
"""

import copy
from typing import Any

__all__ = ["merge_preset"]


def merge_preset(
    presets: dict[str, dict[str, Any]],
    name: str,
    family: str,
    sub_config_names: Any,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """The keyword arguments of preset `name` with `overrides` applied; dict overrides of the sub-configs named in
    `sub_config_names` are merged into the preset's sub-config instead of replacing it."""
    if name not in presets:
        raise ValueError(f"Unknown {family} preset {name!r}; choose one of {sorted(presets)}.")
    kwargs = copy.deepcopy(presets[name])
    for key, value in overrides.items():
        if key in sub_config_names and isinstance(value, dict):
            kwargs[key].update(value)
        else:
            kwargs[key] = value
    return kwargs
