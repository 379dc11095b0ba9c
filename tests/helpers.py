"""Helpers that several test files share (plain functions; the fixtures live in conftest.py). Test files import this
module, never one another."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch
from safetensors.torch import load_file

SCRIPTS = Path(__file__).resolve().parent.parent / "run_scripts"


def script_module(name: str) -> ModuleType:
    """The run script `run_scripts/<name>.py` as a module (loaded once), to call its `main(argv)` in this process."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


def assert_same_weights(a: Path, b: Path) -> None:
    """The `model.safetensors` of folders `a` and `b` hold the same tensors, bit for bit."""
    first, second = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert first.keys() == second.keys()
    different = [name for name in first if not torch.equal(first[name], second[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
