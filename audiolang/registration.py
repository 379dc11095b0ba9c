"""Registering the families with transformers' Auto classes and `pipeline()`, when transformers loads them.

transformers loads its Auto classes on first use (`from transformers import AutoModel` executes
`transformers.models.auto.modeling_auto` then), and a registration needs the class itself, whose module imports the
part of transformers it builds on (`modeling_utils` alone costs more than `import torch, transformers`). So
`import audiolang` imports neither: `install()` puts a finder on `sys.meta_path` that runs each registration right
after the transformers module holding the Auto class has executed (at once for a module already imported), so
that, whatever the order of imports, an Auto class is registered before anyone can call it. A registration waits
while an audiolang module is executing (it may be the very module the registration imports, half-initialised).

Imports only the standard library: `import audiolang` executes this module.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, NamedTuple

__all__ = ["FAMILY_CLASSES", "install"]

_AUTO = "transformers.models.auto."
# `{model_type: ("module.ConfigClass", "module.Class", ...)}`: each class is registered with the Auto class that its
# module declares for it (`register_for_auto_class`, what a saved folder's `auto_map` lists), one declaration for both
# ways of loading. LRAT shares CTAL's front end, Turbo DSCLAP's feature extractor.
FAMILY_CLASSES: dict[str, tuple[str, ...]] = {
    "dsclap": (
        "configuration_dsclap.DsclapConfig",
        "modeling_dsclap.DsclapModel",
        "modeling_dsclap.DsclapForSequenceClassification",
        "feature_extraction_dsclap.DsclapFeatureExtractor",
        "processing_dsclap.DsclapProcessor",
    ),
    "turbo": (
        "configuration_turbo.TurboConfig",
        "modeling_turbo.TurboModel",
        "modeling_turbo.TurboForSequenceClassification",
        "feature_extraction_dsclap.DsclapFeatureExtractor",
        "processing_turbo.TurboProcessor",
    ),
    "ctal": (
        "configuration_ctal.CtalConfig",
        "modeling_ctal.CtalModel",
        "modeling_ctal.CtalForPreTraining",
        "modeling_ctal.CtalForSequenceClassification",
        "modeling_ctal.CtalForXVector",
        "feature_extraction_ctal.CtalFeatureExtractor",
        "processing_ctal.CtalProcessor",
    ),
    "lrat": (
        "configuration_lrat.LratConfig",
        "modeling_lrat.LratModel",
        "modeling_lrat.LratForPreTraining",
        "modeling_lrat.LratForSequenceClassification",
        "modeling_lrat.LratForXVector",
        "feature_extraction_ctal.CtalFeatureExtractor",
        "processing_lrat.LratProcessor",
    ),
}
# The transformers module that defines the Auto classes of each kind of audiolang module (its name's prefix).
_AUTO_MODULE = {
    "configuration": _AUTO + "configuration_auto",
    "modeling": _AUTO + "modeling_auto",
    "feature_extraction": _AUTO + "feature_extraction_auto",
    "processing": _AUTO + "processing_auto",
}
_PIPELINES = "transformers.pipelines"


class _Registration(NamedTuple):
    trigger: str  # the transformers module that must have executed first
    model_type: str | None
    config: str | None  # "module.Class"
    target: str  # "module.Class", or the module of a pipeline


def _registrations() -> list[_Registration]:
    registrations = [_Registration(_PIPELINES, None, None, "pipelines")]
    for model_type, (config, *targets) in FAMILY_CLASSES.items():
        registrations.append(_Registration(_AUTO_MODULE["configuration"], model_type, None, config))
        for target in targets:
            registrations.append(
                _Registration(_AUTO_MODULE[target.rsplit("_", 1)[0]], model_type, config, target)
            )
    return registrations


_pending = _registrations()  # in order: a family's configuration first
# Hooked modules that are executing, and that have executed (`__spec__._initializing` stays set until the import
# statement returns).
_executing: set[str] = set()
_executed: set[str] = set()


def _load(path: str) -> Any:
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def _register(registration: _Registration) -> None:
    trigger, model_type, config, target = registration
    auto_module = sys.modules[trigger]
    if trigger == _PIPELINES:
        # `audiolang.pipelines` registers its tasks with `PIPELINE_REGISTRY` when imported.
        importlib.import_module(f"{__package__}.{target}")
    elif config is None:
        auto_module.AutoConfig.register(model_type, _load(target), exist_ok=True)
    else:
        cls = _load(target)
        getattr(auto_module, cls._auto_class).register(_load(config), cls, exist_ok=True)


def _register_ready() -> None:
    """Run each pending registration whose transformers module has executed, unless an audiolang module is
    executing: importing the families then could meet that module half-initialised (a module that imports
    `AutoModel` triggers the registrations, which import the module). The last one to finish calls this again."""
    if any(name.startswith(f"{__package__}.") for name in _executing):
        return
    for registration in list(_pending):
        # A registration's imports may have run this already (re-entrantly): `_pending` says what is left.
        if registration in _pending and registration.trigger in _executed:
            _register(registration)
            if registration in _pending:
                _pending.remove(registration)


class _RunHookAfter(importlib.abc.Loader):
    """Executes a module with its own loader, then runs the registrations it makes possible."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The module keeps its own loader (source lookups, resources): this wrapper runs once.
        module.__loader__ = module.__spec__.loader = self.loader
        _executing.add(module.__name__)
        try:
            self.loader.exec_module(module)
        finally:
            _executing.discard(module.__name__)
        _executed.add(module.__name__)
        _register_ready()


def _hooked(fullname: str) -> bool:
    return fullname.startswith(f"{__package__}.") or fullname in {_PIPELINES, *_AUTO_MODULE.values()}


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a hooked module it wraps the loader that the other finders give."""

    def find_spec(self, fullname: str, path: Any, target: ModuleType | None = None) -> ModuleSpec | None:
        if not _hooked(fullname):
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RunHookAfter(spec.loader)
                return spec
        return None


def install() -> None:
    """Register with the transformers modules already imported, and with the others once they are (idempotent)."""
    if not any(isinstance(finder, _PostImportFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PostImportFinder())
    _executed.update(
        name
        for name, module in list(sys.modules.items())
        if _hooked(name) and not getattr(module.__spec__, "_initializing", False)
    )
    _register_ready()
