"""Experiment records: a named run, the configuration that reproduces it and its training history.

A record is stored as one JSON file ``<directory>/<file name>.json``, the file name derived from the
record's name by keeping letters, digits, ``.``, ``_`` and ``-`` and replacing every other run of
characters with ``_`` (``"exp1_1 K32/L2"`` -> ``exp1_1_K32_L2.json``)::

    {"name": "exp1_1_K32_L2",
     "config": {"K": 32, "L": 2, "lr": 0.001},
     "result": {"num_epochs": 3, "train_loss": [...], "train_acc": [...],
                "val_loss": [...], "val_acc": [...]}}

The config must be JSON-serialisable with string keys (numbers, strings, booleans, ``None``,
lists and dicts; NumPy and 0-d torch scalars are stored as plain numbers). Tuples come back as
lists.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from hw_utils.training import FitResult

__all__ = [
    "ExperimentRecord",
    "load_record",
    "load_records",
    "record_path",
    "run_experiment",
    "save_record",
]


class ExperimentRecord(NamedTuple):
    """One experiment run: its name, the configuration it ran with and its history."""

    name: str
    config: dict
    result: FitResult


def _file_stem(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"experiment name must be a str, got {type(name).__name__}.")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    if not stem:
        raise ValueError(f"experiment name {name!r} has no letter or digit to name its file.")
    return stem


def record_path(name: str, directory: str | Path = "results") -> Path:
    """The JSON file that :func:`save_record` writes for a record called ``name``."""
    return Path(directory) / f"{_file_stem(name)}.json"


def _plain_scalar(value: Any) -> Any:
    """JSON fallback: NumPy scalars and 0-d tensors become Python numbers."""
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _check_config(value: Any, where: str) -> None:
    """Raise ``TypeError`` naming the first config entry JSON cannot store faithfully."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"config{where}: key {key!r} is not a string; JSON keys are strings, so "
                    "use str keys."
                )
            _check_config(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_config(item, f"{where}[{index}]")
    else:
        try:
            json.dumps(value, default=_plain_scalar)
        except TypeError:
            raise TypeError(
                f"config{where} holds a {type(value).__name__}, which JSON cannot store; store "
                "what rebuilds it instead (a name, a number, a list), e.g. 'Adam' rather than "
                "the optimizer class."
            ) from None


def _result_as_dict(result: Any) -> dict[str, Any]:
    if not isinstance(result, FitResult):
        raise TypeError(
            f"an experiment result must be a hw_utils.training.FitResult, got "
            f"{type(result).__name__}."
        )
    return {
        "num_epochs": int(result.num_epochs),
        "train_loss": [float(v) for v in result.train_loss],
        "train_acc": [float(v) for v in result.train_acc],
        "val_loss": [float(v) for v in result.val_loss],
        "val_acc": [float(v) for v in result.val_acc],
    }


def save_record(record: ExperimentRecord, directory: str | Path = "results") -> Path:
    """Write ``record`` as JSON into ``directory`` (created if needed) and return the file's path.

    An existing record of the same file name is replaced. Raises ``TypeError`` naming the config
    entry that JSON cannot store.
    """
    if not isinstance(record.config, dict):
        raise TypeError(f"config must be a dict, got {type(record.config).__name__}.")
    _check_config(record.config, "")
    path = record_path(record.name, directory)
    text = json.dumps(
        {"name": record.name, "config": record.config, "result": _result_as_dict(record.result)},
        indent=1,
        default=_plain_scalar,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


def load_record(path: str | Path) -> ExperimentRecord:
    """Read a record written by :func:`save_record`; ``ValueError`` naming the file if malformed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}).") from None
    fields = set(FitResult._fields)
    if (
        not isinstance(data, dict)
        or set(data) != {"name", "config", "result"}
        or not isinstance(data["name"], str)
        or not isinstance(data["config"], dict)
        or not isinstance(data["result"], dict)
        or set(data["result"]) != fields
    ):
        raise ValueError(
            f"{path}: not an experiment record; expected a JSON object with 'name', 'config' and "
            f"'result' (holding {', '.join(FitResult._fields)})."
        )
    return ExperimentRecord(data["name"], data["config"], FitResult(**data["result"]))


def load_records(directory: str | Path = "results", pattern: str = "*") -> list[ExperimentRecord]:
    """All records in ``directory`` whose file name matches ``pattern``, sorted by name.

    ``pattern`` is a glob over file names (``".json"`` is appended unless it ends with it), e.g.
    ``"exp1_1_K32_*"``. Names sort in natural order (``L2`` before ``L16``). No match gives an
    empty list; a missing folder raises ``FileNotFoundError``, a malformed file ``ValueError``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        problem = "is not a folder" if directory.exists() else "does not exist"
        raise FileNotFoundError(
            f"results folder {str(directory)!r} {problem} (resolved: {directory.resolve()}); run "
            "the experiments first or pass the folder they were saved to."
        )
    if not pattern.endswith(".json"):
        pattern += ".json"
    records = [load_record(path) for path in directory.glob(pattern) if path.is_file()]
    return sorted(records, key=lambda record: _natural_key(record.name))


def _natural_key(name: str) -> list[tuple[int, int | str]]:
    """Sort key that orders digit runs by value: ``L2`` < ``L16``."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)]


def run_experiment(
    name: str,
    config: dict,
    run: Callable[[dict], FitResult],
    directory: str | Path = "results",
) -> ExperimentRecord:
    """Run ``run(config)``, save the record to ``directory`` and return it.

    The config is checked before running, so an entry JSON cannot store fails fast rather than
    after training. ``run`` gets a deep copy, so changes it makes do not alter the saved config.
    """
    if not isinstance(config, dict):
        raise TypeError(f"run_experiment: config must be a dict, got {type(config).__name__}.")
    _file_stem(name)
    _check_config(config, "")
    result = run(copy.deepcopy(config))
    if not isinstance(result, FitResult):
        raise TypeError(
            f"run_experiment({name!r}): run returned {type(result).__name__}, expected the "
            "FitResult of hw_utils.training.fit."
        )
    record = ExperimentRecord(name, config, result)
    save_record(record, directory)
    return record
