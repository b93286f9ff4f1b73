"""Experiment records: JSON round trip, safe file names, clear errors, run_experiment."""

import json

import numpy as np
import pytest
import torch

from hw_utils.experiments import (
    ExperimentRecord,
    load_record,
    load_records,
    record_path,
    run_experiment,
    save_record,
)
from hw_utils.training import FitResult


def history(num_epochs: int = 3, start: float = 2.0) -> FitResult:
    losses = [start / (epoch + 1) for epoch in range(num_epochs)]
    accuracies = [100.0 / 3 * (epoch + 1) / num_epochs for epoch in range(num_epochs)]
    return FitResult(num_epochs, losses, accuracies, [v + 0.1 for v in losses], accuracies[::-1])


def test_json_round_trip_gives_an_equal_record(tmp_path):
    config = {"K": [32, 64], "L": 2, "lr": 1e-3, "model": {"pool_every": 2, "bn": False}, "x": None}
    record = ExperimentRecord("exp1_1_K32-64_L2", config, history())
    path = save_record(record, tmp_path)
    assert path == tmp_path / "exp1_1_K32-64_L2.json" == record_path(record.name, tmp_path)
    loaded = load_record(path)
    assert loaded == record
    assert isinstance(loaded.result, FitResult)
    assert json.loads(path.read_text())["result"]["num_epochs"] == 3


def test_numpy_and_tensor_scalars_are_stored_as_numbers(tmp_path):
    record = ExperimentRecord(
        "scalars", {"batch": np.int64(64), "lr": torch.tensor(0.5)}, history()
    )
    assert load_record(save_record(record, tmp_path)).config == {"batch": 64, "lr": 0.5}


def test_file_names_stay_inside_the_folder(tmp_path):
    path = save_record(ExperimentRecord("../exp 1/K=32 L=2", {}, history()), tmp_path / "out")
    assert path.parent == tmp_path / "out"
    assert path.name == "exp_1_K_32_L_2.json"
    assert load_record(path).name == "../exp 1/K=32 L=2"
    with pytest.raises(ValueError, match="no letter or digit"):
        save_record(ExperimentRecord("../", {}, history()), tmp_path)


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"lr": 0.1, "optimizer": torch.optim.SGD}, r"config\['optimizer'\] holds a type"),
        ({"model": {"layers": [1, {2, 3}]}}, r"config\['model'\]\['layers'\]\[1\] holds a set"),
        ({"weights": torch.zeros(3)}, r"config\['weights'\] holds a Tensor"),
        ({3: "three"}, "key 3 is not a string"),
    ],
)
def test_config_json_cannot_store_is_refused_naming_the_key(tmp_path, config, named):
    with pytest.raises(TypeError, match=named):
        save_record(ExperimentRecord("bad", config, history()), tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_result_must_be_a_fit_result(tmp_path):
    with pytest.raises(TypeError, match="FitResult"):
        save_record(ExperimentRecord("bad", {}, {"train_loss": [1.0]}), tmp_path)


def test_load_records_sorts_by_name_and_filters_by_pattern(tmp_path):
    for name in ["exp1_L16", "exp1_L2", "exp1_L4", "exp2_L2"]:
        save_record(ExperimentRecord(name, {"L": int(name.split("L")[1])}, history()), tmp_path)
    (tmp_path / "notes.txt").write_text("not a record")
    assert [r.name for r in load_records(tmp_path)] == ["exp1_L2", "exp1_L4", "exp1_L16", "exp2_L2"]
    assert [r.name for r in load_records(tmp_path, "exp1_*")] == ["exp1_L2", "exp1_L4", "exp1_L16"]
    assert [r.name for r in load_records(tmp_path, "exp2_*.json")] == ["exp2_L2"]
    assert load_records(tmp_path, "exp3_*") == []


def test_a_missing_results_folder_is_named(tmp_path):
    missing = tmp_path / "no_such_results"
    with pytest.raises(FileNotFoundError, match=r"no_such_results.*does not exist"):
        load_records(missing)


@pytest.mark.parametrize(
    "content", ["{not json", "[1, 2]", '{"name": "x", "config": {}, "result": {"loss": [1]}}']
)
def test_a_malformed_record_is_named(tmp_path, content):
    save_record(ExperimentRecord("good", {}, history()), tmp_path)
    (tmp_path / "broken.json").write_text(content)
    with pytest.raises(ValueError, match=r"broken\.json"):
        load_records(tmp_path)


def test_run_experiment_runs_saves_and_returns_the_record(tmp_path):
    received = []

    def run(config):
        received.append(config)
        config["lr"] = 99.0  # a run that changes its config must not change what is saved
        return history(num_epochs=config["epochs"])

    config = {"epochs": 4, "lr": 0.01}
    record = run_experiment("exp1_1_K32_L2", config, run, directory=tmp_path)
    assert received == [{"epochs": 4, "lr": 99.0}]
    assert record == ExperimentRecord("exp1_1_K32_L2", {"epochs": 4, "lr": 0.01}, history(4))
    assert load_records(tmp_path) == [record]


def test_run_experiment_checks_the_config_before_running(tmp_path):
    def run(config):
        raise AssertionError("must not run with a config that cannot be saved")

    with pytest.raises(TypeError, match="'device'"):
        run_experiment("exp", {"device": torch.device("cpu")}, run, directory=tmp_path)


def test_run_experiment_wants_a_fit_result(tmp_path):
    with pytest.raises(TypeError, match="returned dict"):
        run_experiment("exp", {}, lambda config: {"val_acc": [1.0]}, directory=tmp_path)
