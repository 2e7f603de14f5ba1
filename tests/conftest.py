"""Shared fixtures: isolated cache, sessions and data folders, one small simulated scan, the CLI."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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


@pytest.fixture(autouse=True)
def sessions_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty sessions folder ($GHOSTTUI_SESSIONS)."""
    path = tmp_path_factory.mktemp("sessions")
    monkeypatch.setenv("GHOSTTUI_SESSIONS", str(path))
    return path


@pytest.fixture(autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ghosttui data folder (session registry, recorded hashes)."""
    path = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("GHOSTTUI_DATA_DIR", str(path))
    return path


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Train on one CPU thread: deterministic, and much faster on a shared, busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    import typer.rich_utils

    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 250)  # typer's help and usage errors

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


# -- sessions and labels -------------------------------------------------------------
CLASSES = ("horizontal", "vertical", "none")


def sim_truth(path: Path) -> np.ndarray:
    """The simulated scan's true class map (Rx, Ry), indices into CLASSES."""
    import h5py

    with h5py.File(path, "r") as f:
        return f["truth"][()].astype(np.int64)


def truth_rows(
    truth: np.ndarray, per_class: int, seed: int = 0, source: str = "import"
) -> list[tuple[int, int, str, str]]:
    """``per_class`` random positions of every class, as (rx, ry, class, source) rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for index, name in enumerate(CLASSES):
        flat = rng.choice(np.flatnonzero(truth.ravel() == index), per_class, replace=False)
        for i in flat:
            rx, ry = np.unravel_index(int(i), truth.shape)
            rows.append((int(rx), int(ry), name, source))
    return rows


def write_csv(path: Path, rows: Iterable[Iterable[object]], header: Iterable[str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(header))
        writer.writerows([list(r) for r in rows])
    return path


@pytest.fixture
def make_session(sim_file: Path) -> Iterator[Callable[..., object]]:
    """``make_session(name, data=..., classes=[...])``: a new writable Session, closed afterwards."""
    from ghosttui.session.session import Session
    from ghosttui.session.settings import make_classes

    opened = []

    def make(
        name: str = "s", data: Path | None = None, classes: list[str] | None = None, **kw: object
    ) -> Session:
        session = Session.create(name, data or sim_file, classes=make_classes(classes), **kw)
        opened.append(session)
        return session

    yield make
    for session in opened:
        session.close()


HOLDER = """
import sys, time
from ghosttui.session.session import Session

session = Session.open(sys.argv[1])
print("holding", flush=True)
time.sleep(300)
"""


@pytest.fixture
def hold_session() -> Iterator[Callable[[str], object]]:
    """``hold_session(name)``: another process opens the session writable and keeps it.

    Returns the ``subprocess.Popen``; killed (SIGKILL) at teardown at the latest.
    """
    import subprocess
    import sys

    procs: list[subprocess.Popen[str]] = []

    def hold(name: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        line = proc.stdout.readline()
        if line.strip() != "holding":
            proc.kill()
            raise AssertionError(f"holder did not start: {line!r} {proc.stderr.read()}")
        return proc

    yield hold
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture(scope="session")
def quick_model_session(tmp_path_factory: pytest.TempPathFactory, sim_file: Path) -> Path:
    """A session on the simulated scan (pooled to 32x32) trained for a few epochs on 15
    labels per class: a real model quickly, for tests of applying it. Read-only: tests
    that change it copy the folder; open it with ``Session.open(str(path))``."""
    import torch

    from ghosttui.loop.controller import LabellingController
    from ghosttui.loop.rounds import train_model
    from ghosttui.patterns.settings import PreprocessSettings
    from ghosttui.session.session import Session
    from ghosttui.session.settings import make_classes

    root = tmp_path_factory.mktemp("quick-model")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("GHOSTTUI_CACHE_DIR", str(root / "cache"))
            session = Session.create(
                "quick",
                sim_file,
                classes=make_classes(),
                preprocess=PreprocessSettings(size=32),
                directory=root / "quick",
            )
            with session:
                session.store.import_labels(truth_rows(sim_truth(sim_file), 15, seed=3))
                # what `ghosttui train` does: a job on the labels, trained, judged, recorded
                loop = LabellingController(session, resume=False)
                job = loop.request_training(epochs=8)
                loop.training_started(job)
                loop.training_finished(train_model(session, job))
                assert session.current_model() is not None
    finally:
        torch.set_num_threads(threads)
    return root / "quick"


# -- the terminal app ----------------------------------------------------------------------------
APP_SIZE = (160, 48)


@dataclass
class AppRun:
    """``run(scenario)``: ``scenario(app, pilot)`` (async) inside the labelling app on
    ``session``; returns what the scenario returns. Each run is a fresh app (as a restart)."""

    session: object
    render: str = "halfblock"
    size: tuple[int, int] = APP_SIZE

    def run(self, scenario: Callable[..., object], **kw: object) -> object:
        import asyncio

        from ghosttui.tui.app import create_app

        render = kw.pop("render", self.render)
        size = kw.pop("size", self.size)
        viewer = kw.pop("viewer", None)

        async def main() -> object:
            app = create_app(self.session, render=render, viewer=viewer)
            for name, value in kw.items():
                setattr(app, name, value)
            async with app.run_test(size=size) as pilot:
                await pilot.pause()
                return await scenario(app, pilot)

        return asyncio.run(main())

    def reopen(self) -> None:
        """Close the session and open it again (as after quitting the app)."""
        from ghosttui.session.session import Session

        name, directory = self.session.name, self.session.dir
        self.session.close()
        self.session = Session.open(name, directory=directory)


@pytest.fixture
def labelling_app(sim_file: Path) -> Iterator[Callable[..., AppRun]]:
    """``labelling_app(name="app", **session options)``: an :class:`AppRun` on a new session
    of the simulated scan (a small, fast model by default); closed afterwards."""
    from ghosttui.session.session import Session
    from ghosttui.session.settings import ModelSpec, make_classes

    runs: list[AppRun] = []

    def make(
        name: str = "app",
        classes: list[str] | None = None,
        keys: list[str] | None = None,
        **kw: object,
    ) -> AppRun:
        kw.setdefault("model", ModelSpec(width=8, epochs=12))
        session = Session.create(name, sim_file, classes=make_classes(classes, keys), **kw)
        runs.append(AppRun(session))
        return runs[-1]

    yield make
    for run in runs:
        run.session.close()


# -- fake training (the loop's decisions without a network) ------------------------------------
def fake_model(session, job, probabilities: np.ndarray, **metrics: object):
    """What ``loop.rounds.train_model`` returns for ``job`` (a TrainedModel), with its files
    written, without training anything."""
    from ghosttui.loop.rounds import TrainedModel

    stem = f"fake-{job.round}-{job.up_to_event}-{len(session.store.models())}"
    checkpoint = session.dir / "checkpoints" / f"{stem}.pt"
    checkpoint.parent.mkdir(exist_ok=True)
    checkpoint.write_bytes(b"fake")
    predictions = session.save_predictions(stem, job.round, probabilities)
    digest = session.store.training_digest(session.store.labels_at(job.up_to_event))
    return TrainedModel(job, checkpoint, predictions, probabilities, digest, dict(metrics))


def one_hot(truth: np.ndarray, wrong: float = 0.0, seed: int = 0) -> np.ndarray:
    """Probabilities that say the truth, except at a random ``wrong`` share of positions."""
    classes = truth.copy()
    rng = np.random.default_rng(seed)
    flip = rng.random(truth.shape) < wrong
    classes[flip] = (classes[flip] + 1) % 3
    return np.eye(3, dtype=np.float32)[classes] * 0.9 + 0.1 / 3
