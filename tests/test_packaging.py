"""Packaging facts stated in two files agree: conda vs pip pins, README vs CI command."""

from __future__ import annotations

import re
import tomllib

import yaml


def test_environment_yml_installs_exactly_the_pyproject_dependencies(repo_root):
    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text())
    environment = yaml.safe_load((repo_root / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section
    assert sorted(p for p in pip_section if p != "-e .") == sorted(
        pyproject["project"]["dependencies"]
    )


def test_torch_is_pinned(repo_root):
    dependencies = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    assert "torch==2.14.1" in dependencies and "torchvision==0.29.1" in dependencies


def test_ci_runs_the_test_command_written_in_the_readme(repo_root):
    readme = (repo_root / "README.md").read_text()
    commands = re.findall(r"```bash\n(.+?)\n```", readme)
    assert len(commands) >= 2, "README's quick start shows the demo and the test command"
    demo, test = commands[0], commands[1]
    assert demo.startswith("bash tools/setup.sh && ") and demo.endswith("course demo")
    assert test in (repo_root / ".ci" / "run").read_text().splitlines()
