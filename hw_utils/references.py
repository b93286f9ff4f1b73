"""Course reference implementations: code in hw_utils that does what an assignment asks for.

Later assignments need working versions of earlier ones (the reference trainer of
:mod:`hw_utils.training` is hw2's ``train_epoch``/``evaluate``/``fit``; tests stand a correct
``conv_output_size`` in for the student's). They stay in hw_utils, marked::

    @course_reference("train_epoch")
    def train_epoch(...): ...

and grading flags (``static:reference``) a solution cell that uses one for a function its own
assignment asks for, by import, attribute or alias. The decorator changes nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

_REFERENCES: dict[str, str] = {}  # "module.qualname" -> the graded name it implements


def course_reference(graded_name: str) -> Callable[[F], F]:
    """Mark a function or class as the course's implementation of ``graded_name``."""

    def mark(function: F) -> F:
        _REFERENCES[f"{function.__module__}.{function.__qualname__}"] = graded_name
        return function

    return mark


def all_references() -> dict[str, str]:
    """Every marked reference of hw_utils (``dotted.path`` -> graded name), under each name a
    module exports it by (``hw_utils.data.random_flip_crop`` as well as
    ``hw_utils.data.augment.random_flip_crop``); imports the package's student-facing modules
    (not the grading tools) to find them."""
    import hw_utils

    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(hw_utils.__path__, "hw_utils.")
        if not info.name.startswith(("hw_utils.grading", "hw_utils.cli", "hw_utils.__main__"))
    ]
    found = dict(_REFERENCES)
    marked = {}
    for path, name in _REFERENCES.items():
        module_name, _, qualname = path.rpartition(".")
        marked[id(getattr(importlib.import_module(module_name), qualname))] = name
    for module in modules:
        for attribute, value in vars(module).items():
            if id(value) in marked:
                found[f"{module.__name__}.{attribute}"] = marked[id(value)]
    return found
