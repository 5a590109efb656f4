"""A throwaway copy of the project in a temporary git repository, for end-to-end pipeline tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROJECT_FILES = (
    "lablib",
    "stages",
    "mymodels",
    "mylayers",
    "reports/experiments",
    "experiments.yaml",
    "dvc.yaml",
    "params.yaml",
    ".dvcignore",
    ".gitignore",
    "pyproject.toml",
)

# Small enough to run in seconds, large enough to exercise every technique of both reports.
QUICK = {
    "data.subset": 300,
    "data.val_per_class": 10,
    "data.kfold": 3,
    "epochs": 2,
    "batch_size": 50,
    "evaluate.feature_samples": 100,
}


class Workspace:
    """A git + DVC repository holding a copy of the project; commands run with this venv's tools."""

    def __init__(self, root: Path, data_dir: Path) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "FASHION_MNIST_DIR": str(data_dir),
            "DVC_NO_ANALYTICS": "1",
        }
        self.env.pop("PYTHONPATH", None)

    def run(
        self, *args: str, check: bool = True, timeout: float = 900, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the repository; ``env`` adds to or overrides its environment."""
        result = subprocess.run(
            args, cwd=self.root, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
        return result

    def set_params(self, overrides: Mapping[str, Any]) -> None:
        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text())
        for dotted, value in overrides.items():
            *parents, key = dotted.split(".")
            node = params
            for parent in parents:
                node = node[parent]
            node[key] = value
        path.write_text(yaml.safe_dump(params, sort_keys=False))

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-qm", message)


def make_workspace(path: Path, data_dir: Path, overrides: Mapping[str, Any]) -> Workspace:
    path.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, path / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, path / name)
    ws = Workspace(path, data_dir)
    ws.run("git", "init", "-q", "-b", "main")
    ws.run("git", "config", "user.email", "test@example.com")
    ws.run("git", "config", "user.name", "test")
    ws.run("dvc", "init", "-q")
    shutil.copy2(REPO / ".dvc" / "config", path / ".dvc" / "config")
    ws.set_params({**QUICK, **overrides})
    ws.commit("project")
    return ws


@pytest.fixture(scope="module")
def without_torch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment in which ``import torch`` fails as if PyTorch were not installed: a ``torch``
    package that raises, first on ``PYTHONPATH``."""
    shim = tmp_path_factory.mktemp("no_torch")
    (shim / "torch").mkdir()
    (shim / "torch" / "__init__.py").write_text(
        'raise ModuleNotFoundError("No module named \'torch\' (hidden by the test)", name="torch")\n'
    )
    return {"PYTHONPATH": str(shim)}


@pytest.fixture(scope="module")
def workspace_factory(tmp_path_factory: pytest.TempPathFactory, real_data_dir: Path):
    def factory(overrides: Mapping[str, Any] | None = None) -> Workspace:
        return make_workspace(tmp_path_factory.mktemp("ws") / "repo", real_data_dir, overrides or {})

    return factory
