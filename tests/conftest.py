"""Shared fixtures: an isolated cache folder, one small simulated scan, the CLI in-process."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ghosttui.simulate import SimulationSettings, simulate

DATA = Path(__file__).parent / "data"

# One small simulated scan shared by the whole session (about half a second to write).
SIM_SETTINGS = SimulationSettings(scan=(24, 16), size=64, seed=11, ghost_strength=0.05)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty cache folder; nothing touches ~/.cache."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GHOSTTUI_CACHE_DIR", str(path))
    monkeypatch.delenv("GHOSTTUI_DEBUG", raising=False)
    return path


@pytest.fixture(scope="session")
def sim_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated (24, 16, 64, 64) uint16 scan. Read-only: copy it before changing it."""
    path = tmp_path_factory.mktemp("sim") / "sim.h5"
    simulate(path, SIM_SETTINGS)
    path.chmod(0o444)
    return path


@pytest.fixture
def sim_copy(sim_file: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the simulated scan."""
    path = tmp_path / "copy.h5"
    shutil.copyfile(sim_file, path)
    return path


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def run_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., CliResult]:
    """Run ``ghosttui ARGS`` in this process; returns its exit code, stdout and stderr."""
    from ghosttui.cli import main
    from ghosttui.cli.options import console, err_console

    # wide consoles, so that rich does not wrap long paths in the output checked below
    monkeypatch.setattr(console, "width", 250)
    monkeypatch.setattr(err_console, "width", 250)

    def run(*args: object) -> CliResult:
        capsys.readouterr()  # drop anything printed before
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        code = exit_info.value.code
        return CliResult(0 if code is None else int(code), captured.out, captured.err)

    return run


def assert_one_line_error(result: CliResult, *fragments: str) -> str:
    """Exit status 2 and a single ``ghosttui: error:`` line on stderr holding ``fragments``."""
    assert result.code == 2, (result.code, result.out, result.err)
    assert "Traceback" not in result.err
    assert len(result.err_lines) == 1, result.err
    line = result.err_lines[0]
    assert line.startswith("ghosttui: error: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line
