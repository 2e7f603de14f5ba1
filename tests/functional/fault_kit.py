"""Helpers of the fault tests (test_faults*.py): sessions with rounds, and what was on disk."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from conftest import sim_truth, truth_rows

from ghosttui.model.checkpoint import save_checkpoint
from ghosttui.model.network import GhostNet
from ghosttui.session.session import Session
from ghosttui.session.settings import make_classes


def fake_round(session: Session, seed: int) -> int:
    """Record one trained model without training: a real (untrained) checkpoint and a map.

    Returns the model's id. Enough for export, predict and status, in milliseconds.
    """
    import torch

    round_number = session.store.round
    stem = f"round-{len(session.store.models()) + 1:04d}"  # the n-th model's files
    torch.manual_seed(seed)
    state = GhostNet(len(session.classes), width=4).state_dict()
    meta = {
        "arch": "ghostnet",
        "arch_config": {"width": 4},
        "input_size": session.settings.preprocess.size,
        "classes": session.classes,
        "round": round_number,
        "session_id": session.settings.id,
        "session_name": session.name,
        "metrics": {},
    }
    checkpoint = save_checkpoint(session.dir / "checkpoints" / f"{stem}.pt", state, meta)
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(len(session.classes)), session.scan_shape)
    predictions = session.save_predictions(stem, round_number, probabilities.astype(np.float32))
    record = session.store.add_model(
        round=round_number,
        up_to_event=session.store.last_event_id(),
        labels_digest=session.store.training_digest(),
        checkpoint=str(checkpoint.relative_to(session.dir)),
        predictions=str(predictions.relative_to(session.dir)),
        state="current",
        reason="fake",
        metrics={"labels": 12},
    )
    session.store.plan_round(round_number + 1, [], "fake", {})  # the next model's round
    return record.id


def make_session_with_rounds(
    name: str, data: Path, rounds: int = 1, directory: Path | None = None
) -> Path:
    """A session on ``data`` with 12 imported labels and ``rounds`` recorded rounds."""
    with Session.create(name, data, classes=make_classes(), directory=directory) as session:
        session.store.import_labels(truth_rows(sim_truth(data), 4, seed=3))
        for i in range(rounds):
            fake_round(session, seed=i)
        return session.dir


def state(*paths: Path) -> dict[str, tuple[str, int]]:
    """Content hash and modification time of every file under ``paths`` (lock files aside).

    SQLite's shared-memory index (``-shm``) and an empty write-ahead log are left out:
    a read-only reader creates them and a writer's clean close removes them; neither
    holds data.
    """
    found: dict[str, tuple[str, int]] = {}
    for root in paths:
        candidates = [root] if root.is_file() else sorted(root.rglob("*"))
        for p in candidates:
            if not p.is_file() or p.name == ".lock" or p.name.endswith("-shm"):
                continue
            if p.name.endswith("-wal") and p.stat().st_size == 0:
                continue
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            found[str(p)] = (digest, os.stat(p).st_mtime_ns)
    return found


def temporaries(folder: Path) -> list[str]:
    """Names of ghosttui temporaries left anywhere under ``folder``."""
    return sorted(p.name for p in folder.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name)


def assert_error_line(result, *fragments: str) -> str:
    """Exit status 2 and one ``ghosttui: error:`` line, the last on stderr, holding ``fragments``.

    Commands that stream (simulate, preprocess, predict) may have drawn a progress bar
    before the error: that is not an error line.
    """
    assert result.code == 2, (result.code, result.out, result.err)
    assert "Traceback" not in result.err and "internal error" not in result.err, result.err
    errors = [line for line in result.err_lines if line.startswith("ghosttui: error: ")]
    assert len(errors) == 1 and errors == result.err_lines[-1:], result.err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]
