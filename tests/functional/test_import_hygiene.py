"""Import hygiene: commands that run no model start without torch, py4DSTEM or Textual.

torch costs seconds to import, py4DSTEM more; a command that does not need them must
not pay for them. Each command runs in a fresh interpreter, and the test reads which
heavy packages it imported. Also: the core never imports a UI library, and the plain-data
settings modules never import torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import write_csv

HEAVY = ("torch", "py4DSTEM", "textual", "matplotlib", "h5py")

RUN_COMMAND = """
import json, sys
from ghosttui.cli import main
try:
    main(sys.argv[2:])
    code = 0
except SystemExit as exc:
    code = exc.code or 0
heavy = [name for name in json.loads(sys.argv[1]) if name in sys.modules]
print("\\nIMPORTED " + json.dumps({"code": code, "heavy": heavy}))
"""

IMPORT_MODULES = """
import importlib, json, sys
for name in sys.argv[2:]:
    importlib.import_module(name)
heavy = [name for name in json.loads(sys.argv[1]) if name in sys.modules]
print("IMPORTED " + json.dumps({"code": 0, "heavy": heavy}))
"""


def run_fresh(script: str, args: list[str], watched: tuple[str, ...] = HEAVY) -> dict:
    """Run ``script`` in a new interpreter; returns its exit code and the watched imports."""
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(watched), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    marker = [line for line in proc.stdout.splitlines() if line.startswith("IMPORTED ")]
    assert marker, (args, proc.stdout[-2000:], proc.stderr[-2000:])
    result = json.loads(marker[-1].removeprefix("IMPORTED "))
    result["output"] = proc.stdout + proc.stderr
    return result


@pytest.fixture
def light_files(tmp_path: Path, sim_file: Path, make_session) -> dict[str, Path]:
    """A .npy scan, an .h5 scan, a 3D stack and a session with labels and a finished round."""
    npy = tmp_path / "scan.npy"
    np.save(npy, np.random.default_rng(0).poisson(4, (5, 4, 16, 16)).astype(np.uint16))
    stack = tmp_path / "stack.npy"
    np.save(stack, np.ones((20, 8, 8), np.uint16))
    h5 = tmp_path / "scan.h5"
    with h5py.File(h5, "w") as f:
        f["data"] = np.random.default_rng(1).poisson(4, (5, 4, 16, 16)).astype(np.uint16)
    session = make_session("light")
    session.store.import_labels([(0, 0, "horizontal", "import"), (1, 1, "vertical", "import")])
    # a model as `ghosttui train` records it, so that status draws its models table
    session.store.add_model(
        round=1,
        up_to_event=2,
        labels_digest="d",
        checkpoint="checkpoints/model.pt",
        predictions="predictions/model.h5",
        state="current",
        reason="first model",
        metrics={"labels": 2, "seconds_train": 1.5, "holdout_n": 0},
    )
    session.close()
    csv = write_csv(tmp_path / "more.csv", [(2, 2, "none")], ["rx", "ry", "label"])
    return {"npy": npy, "h5": h5, "stack": stack, "csv": csv, "out": tmp_path / "labels.csv"}


# command -> what it may import of HEAVY (h5py only where it reads HDF5)
def light_commands(files: dict[str, Path]) -> list[tuple[list[str], set[str]]]:
    return [
        (["--help"], set()),
        (["--version"], set()),
        (["label", "--help"], set()),
        (["train", "--help"], set()),
        (["info", str(files["npy"])], set()),
        (["info", str(files["stack"])], set()),
        (["info", str(files["h5"])], {"h5py"}),
        (["new", "fresh", "--data", str(files["h5"])], {"h5py"}),
        (["status", "light"], set()),
        (["status"], set()),
        (["sessions"], set()),
        (["labels", "export", "light", str(files["out"])], set()),
        (["labels", "import", "light", str(files["csv"])], set()),
    ]


@pytest.mark.slow
def test_light_commands_import_no_torch_py4dstem_or_textual(light_files):
    commands = light_commands(light_files)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: run_fresh(RUN_COMMAND, c[0]), commands))
    for (args, allowed), result in zip(commands, results, strict=True):
        assert result["code"] == 0, (args, result["output"][-2000:])
        assert set(result["heavy"]) <= allowed, (args, result["heavy"])


def test_the_probe_sees_what_a_command_imports():
    """The check above can fail: the probe sees typer, which every command imports."""
    result = run_fresh(RUN_COMMAND, ["--version"], watched=("typer", "torch"))
    assert result["code"] == 0, result["output"][-2000:]
    assert result["heavy"] == ["typer"]


def core_modules() -> list[str]:
    """Every module of ghosttui outside the two UI layers (tui/, cli/)."""
    import pkgutil

    import ghosttui

    return sorted(
        info.name
        for info in pkgutil.walk_packages(ghosttui.__path__, "ghosttui.")
        if not info.name.startswith(("ghosttui.tui", "ghosttui.cli", "ghosttui.__main__"))
    )


CORE = core_modules()


@pytest.mark.slow
def test_the_core_imports_no_ui_library():
    result = run_fresh(IMPORT_MODULES, CORE, watched=("textual", "typer", "textual_image"))
    assert result["heavy"] == []


@pytest.mark.parametrize(
    "module",
    [
        "ghosttui.session.settings",
        "ghosttui.patterns.settings",
        "ghosttui.session.home",
        "ghosttui.patterns.detector",
        "ghosttui.patterns.preview",
    ],
)
def test_plain_data_and_numpy_modules_import_no_torch(module):
    assert run_fresh(IMPORT_MODULES, [module])["heavy"] == []
