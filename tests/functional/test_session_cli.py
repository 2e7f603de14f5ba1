"""The loop from the command line: new, labels import, train, status, predict, export.

Training runs on the simulated 24x16 scan pooled to 32x32, for 15 epochs on
one CPU thread: about a second a round, and a map well above chance.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys

import h5py
import numpy as np
import pytest
from conftest import CLASSES, assert_one_line_error, sim_truth, truth_rows, write_csv
from PIL import Image

from ghosttui.errors import ModelError
from ghosttui.loop.controller import LabellingController
from ghosttui.loop.rounds import TrainingCancelled, train_model
from ghosttui.metrics import changed_fraction
from ghosttui.model.checkpoint import load_checkpoint
from ghosttui.model.learners import rotation_pairs
from ghosttui.session.session import Session

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PAPER_RGB = {"horizontal": (0, 0, 255), "vertical": (0, 255, 0), "none": (255, 0, 0)}
EPOCHS = 30
# measured on this scan with seed 0: 0.92-0.95 whole-map accuracy for several label draws
MIN_ACCURACY = 0.8
HEADER = ["rx", "ry", "label", "source"]


def free_rows(truth, taken, per_class, seed, source):
    """``per_class`` random positions of each class not in ``taken`` (which is updated)."""
    rng = np.random.default_rng(seed)
    rows = []
    for index, name in enumerate(CLASSES):
        free = [p for p in zip(*np.nonzero(truth == index), strict=True) if p not in taken]
        for i in rng.choice(len(free), per_class, replace=False):
            rx, ry = int(free[i][0]), int(free[i][1])
            rows.append((rx, ry, name, source))
            taken.add((rx, ry))
    return rows


def training_and_holdout(truth, per_class=20, holdout_per_class=4, seed=0):
    rows = truth_rows(truth, per_class, seed=seed)
    taken = {(r[0], r[1]) for r in rows}
    return rows, free_rows(truth, taken, holdout_per_class, seed + 100, "holdout")


def read_predictions(path, group=None):
    with h5py.File(path, "r") as f:
        node = f[group] if group else f
        return {
            "probabilities": node["probabilities"][()],
            "classes": node["classes"][()],
            "confidence": node["confidence"][()],
            "attrs": dict(f.attrs),
            "node_attrs": dict(node.attrs),
            "keys": sorted(node.keys()),
        }


def table_row(text, first_cell):
    """The cells of the rich table row whose first cell starts with ``first_cell``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│")]
        cells = [c for c in cells if c]
        if cells and cells[0].startswith(first_cell):
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{text}")


def models_of(name):
    with Session.open(name, writable=False) as session:
        return session.store.models()


def train_now(session, epochs=None, should_stop=None):
    """What ``ghosttui train`` does: a job on the labels as they stand, judged and recorded."""
    loop = LabellingController(session, resume=False)
    job = loop.request_training(epochs=epochs)
    loop.training_started(job)
    return loop.training_finished(train_model(session, job, should_stop=should_stop))


def snapshot(folder):
    """Bytes of every file in a session folder (the lock file aside).

    SQLite's own bookkeeping is left out when it holds no data: the shared-memory
    index (``-shm``) and an empty write-ahead log, which a read-only reader creates
    and a writer's clean close removes.
    """
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and p.name != ".lock"
        and not p.name.endswith("-shm")
        and not (p.name.endswith("-wal") and p.stat().st_size == 0)
    }


# -- the whole loop, as a user runs it ------------------------------------------------------------
@pytest.mark.slow  # two training rounds: about 5 s
def test_label_train_status_predict_export(run_cli, sim_file, sessions_dir, tmp_path):
    truth = sim_truth(sim_file)
    assert set(np.unique(truth)) == {0, 1, 2}
    rows, holdout = training_and_holdout(truth)
    assert run_cli("new", "e2e", "--data", sim_file, "--size", 32).code == 0
    folder = sessions_dir / "e2e"
    labels_csv = write_csv(tmp_path / "labels.csv", rows + holdout, HEADER)
    result = run_cli("labels", "import", "e2e", labels_csv)
    assert result.code == 0, result.err
    assert "imported 72 labels" in result.out

    status = run_cli("status", "e2e")
    assert status.code == 0, status.err
    assert "no model yet" in status.out
    assert table_row(status.out, "class") == ["class", "holdout", "import", "total"]
    assert table_row(status.out, "■ none (n)") == ["■ none (n)", "4", "20", "24"]
    assert table_row(status.out, "all") == ["all", "12", "60", "72"]

    # the first model
    result = run_cli("train", "e2e", "--epochs", EPOCHS)
    assert result.code == 0, result.err
    first = re.search(
        r"model 1 \(round 1, (cnn|logreg)(, patterns \+ 3x3 means, blur 1 px)?\): trained on 60 labels",
        result.out,
    )
    assert first, result.out
    # the linear one blends fits on the patterns and on their 3x3 means, blurred inputs
    assert bool(first.group(2)) == (first.group(1) == "logreg")
    assert f"learner auto took {first.group(1)}: " in result.out  # the default says why
    assert "now the model in use: first model" in result.out
    assert "holdout" in result.out and "95% CI" in result.out and "n=12)" in result.out
    (first_model,) = models_of("e2e")
    assert first_model.state == "current"
    assert (folder / first_model.checkpoint).is_file()
    first = read_predictions(folder / first_model.predictions)
    probabilities = first["probabilities"]
    assert probabilities.shape == (24, 16, 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    accuracy = float(np.mean(probabilities.argmax(-1) == truth))
    assert accuracy > MIN_ACCURACY, accuracy
    metrics = first_model.metrics
    assert metrics["labels"] == 60  # every training label trains: no validation split
    assert metrics["label_counts"] == {"horizontal": 20, "vertical": 20, "none": 20}
    assert metrics["holdout_n"] == 12
    hits = sum(probabilities[rx, ry].argmax() == CLASSES.index(c) for rx, ry, c, _ in holdout)
    assert metrics["holdout_correct"] == hits
    assert "changed_fraction" not in metrics

    status = run_cli("status", "e2e")
    assert status.code == 0, status.err
    model_row = table_row(status.out, "1")
    assert model_row[1:4] == ["1", "60", "current"]  # round, labels, state
    assert model_row[4].startswith(f"{hits / 12:.1%} (95% CI") and model_row[4].endswith("n=12)")
    assert "stopping: not met" in status.out and "stable when" in status.out

    # a second model, on a few more labels
    more = free_rows(truth, {(r[0], r[1]) for r in rows + holdout}, 4, 7, "manual")
    write_csv(tmp_path / "more.csv", more, HEADER)
    assert run_cli("labels", "import", "e2e", tmp_path / "more.csv").code == 0
    result = run_cli("train", "e2e", "--epochs", EPOCHS)
    assert result.code == 0, result.err
    assert re.search(
        r"model 2 \(round 1, (cnn|logreg, patterns \+ 3x3 means, blur 1 px)\): trained on 72 labels",
        result.out,
    )
    assert "map changed" in result.out
    second_model = models_of("e2e")[1]
    assert [m.state for m in models_of("e2e")] == ["retired", "current"]
    second = read_predictions(folder / second_model.predictions)
    metrics = second_model.metrics
    assert metrics["labels"] == 72
    assert metrics["changed_fraction"] == pytest.approx(
        changed_fraction(probabilities.argmax(-1), second["probabilities"].argmax(-1))
    )
    assert -1.0 <= metrics["kappa_previous"] <= 1.0
    assert float(np.mean(second["probabilities"].argmax(-1) == truth)) > MIN_ACCURACY
    status = run_cli("status", "e2e")
    model_row = table_row(status.out, "2")
    assert model_row[6] == f"{metrics['changed_fraction']:.2%}"
    summary = json.loads(run_cli("status", "e2e", "--json").out)
    assert summary["labels"] == 84 and summary["model_id"] == 2 and summary["model_round"] == 1
    assert summary["accuracy_estimate"]["n"] == 12
    low, high = summary["accuracy_estimate"]["ci95"]
    assert low <= summary["accuracy_estimate"]["value"] <= high
    assert summary["stable"] is False
    if summary["model_learner"] == "logreg":
        assert summary["model_mean_share"] == 0.5 and summary["model_input_blur"] == 1.0
        # the default, auto: the inputs it took, and why
        assert summary["model_input_symmetry"] in ("none", "mirror")
        assert "surer over the scan" in summary["model_symmetry_reason"] or (
            "significantly better" in summary["model_symmetry_reason"]
        )

    # predict: the session's own scan ...
    out = tmp_path / "pred.h5"
    result = run_cli("predict", "e2e", "--out", out)
    assert result.code == 0, result.err
    own = read_predictions(out)
    assert own["keys"] == ["classes", "confidence", "probabilities"]
    assert own["attrs"]["classes"] == "horizontal,vertical,none"
    assert own["attrs"]["round"] == 1
    assert list(own["node_attrs"]["class_names"]) == list(CLASSES)
    np.testing.assert_allclose(own["probabilities"], second["probabilities"], atol=1e-4)
    # ... and a series of other scans, one group each
    series = []
    for stem in ("scan_a", "scan_b"):
        series.append(tmp_path / f"{stem}.h5")
        shutil.copyfile(sim_file, series[-1])
    out2 = tmp_path / "series.h5"
    result = run_cli("predict", "e2e", "--out", out2, "--data", series[0], "--data", series[1])
    assert result.code == 0, result.err
    with h5py.File(out2, "r") as f:
        assert sorted(f.keys()) == ["scan_a", "scan_b"]
    for stem, path in zip(("scan_a", "scan_b"), series, strict=True):
        group = read_predictions(out2, stem)
        assert group["probabilities"].shape == (24, 16, 3)
        np.testing.assert_allclose(group["probabilities"], own["probabilities"], atol=1e-5)
        assert np.array_equal(group["classes"], group["probabilities"].argmax(-1))
        np.testing.assert_allclose(group["confidence"], group["probabilities"].max(-1))
        assert list(group["node_attrs"]["class_names"]) == list(CLASSES)
        assert group["node_attrs"]["source"] == str(path.resolve())

    # export
    export = tmp_path / "export"
    result = run_cli("export", "e2e", "--out", export)
    assert result.code == 0, result.err
    names = sorted(p.name for p in export.iterdir())
    assert names == [
        "confidence_map.png",
        "domain_map.png",
        "domain_map_large.png",
        "labels.csv",
        "manifest.json",
        "model.pt",
        "predictions.h5",
    ]
    exported = read_predictions(export / "predictions.h5")
    assert exported["attrs"]["classes"] == "horizontal,vertical,none"
    assert exported["attrs"]["round"] == 1
    np.testing.assert_array_equal(exported["probabilities"], second["probabilities"])
    domain = np.asarray(Image.open(export / "domain_map.png").convert("RGB"))
    assert domain.shape == (24, 16, 3)  # one pixel per position, Rx down
    palette = np.array([PAPER_RGB[c] for c in CLASSES], np.uint8)
    np.testing.assert_array_equal(domain, palette[exported["classes"]])
    assert {tuple(c) for c in domain.reshape(-1, 3)} <= set(PAPER_RGB.values())
    large = Image.open(export / "domain_map_large.png")
    assert large.width > 16 * 10 and large.height > 24 * 10
    assert Image.open(export / "confidence_map.png").width > 16
    with open(export / "labels.csv", newline="", encoding="utf-8") as handle:
        exported_labels = list(csv.DictReader(handle))
    assert len(exported_labels) == 60 + 12 + 12  # training, holdout, the second model's labels
    assert {(int(r["rx"]), int(r["ry"]), r["label"], r["source"]) for r in exported_labels} == {
        *rows,
        *holdout,
        *more,
    }
    assert (export / "model.pt").read_bytes() == (folder / second_model.checkpoint).read_bytes()
    assert load_checkpoint(export / "model.pt").meta["labels_digest"] == second_model.labels_digest

    result = run_cli("export", "e2e", "--out", tmp_path / "first", "--model", 1)
    assert result.code == 0, result.err
    np.testing.assert_array_equal(
        read_predictions(tmp_path / "first" / "predictions.h5")["probabilities"], probabilities
    )


# -- a trained session to break ---------------------------------------------------------------
@pytest.fixture(scope="module")
def pristine(tmp_path_factory, sim_file):
    """A session trained once (round 1), kept untouched; tests work on copies."""
    import torch

    from ghosttui.patterns.settings import PreprocessSettings
    from ghosttui.session.settings import make_classes

    root = tmp_path_factory.mktemp("pristine")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("GHOSTTUI_CACHE_DIR", str(root / "cache"))
            session = Session.create(
                "trained",
                sim_file,
                classes=make_classes(),
                preprocess=PreprocessSettings(size=32),
                directory=root / "trained",
            )
            with session:
                rows, holdout = training_and_holdout(sim_truth(sim_file), seed=1)
                session.store.import_labels(rows + holdout)
                train_now(session, epochs=EPOCHS)
    finally:
        torch.set_num_threads(threads)
    return root / "trained"


@pytest.fixture
def trained(pristine, sessions_dir):
    folder = sessions_dir / "trained"
    shutil.copytree(pristine, folder)
    return folder


def checkpoint_of(folder):
    (model,) = models_of(folder.name)
    return folder / model.checkpoint


@pytest.mark.slow
def test_the_module_session_is_trained(trained):
    (model,) = models_of("trained")
    assert model.state == "current" and model.round == 1
    assert checkpoint_of(trained).is_file()


def test_train_with_no_labels(run_cli, make_session):
    make_session("empty").close()
    assert_one_line_error(run_cli("train", "empty"), "has no training labels")
    assert models_of("empty") == []


def test_train_with_labels_of_one_class_names_what_is_missing(run_cli, make_session, sessions_dir):
    session = make_session("partial")
    session.store.import_labels(
        [
            (1, 1, "horizontal", "import"),
            (20, 1, "horizontal", "import"),
            (11, 5, "none", "holdout"),
        ]
    )
    session.close()
    before = snapshot(sessions_dir / "partial")
    line = assert_one_line_error(run_cli("train", "partial"), "only horizontal has labels")
    assert "vertical or none" in line  # the holdout's 'none' never trains
    assert snapshot(sessions_dir / "partial") == before
    assert not (sessions_dir / "partial" / "checkpoints").exists()


@pytest.mark.slow
def test_failed_training_keeps_labels_and_checkpoints(run_cli, trained, tmp_path):
    # relabel every training label as 'horizontal': training now has one class
    with Session.open("trained") as session:
        others = [
            lab
            for lab in session.store.labels().values()
            if lab.cls != "horizontal" and lab.source != "holdout"
        ]
        assert others
        session.store.import_labels([(lab.rx, lab.ry, "horizontal", "manual") for lab in others])
        labels = {pos: lab.cls for pos, lab in session.store.labels().items()}
    before = snapshot(trained)
    assert_one_line_error(run_cli("train", "trained", "--epochs", 2), "only horizontal has labels")
    assert_one_line_error(run_cli("train", "trained", "--promote"), "only horizontal has labels")
    assert snapshot(trained) == before
    with Session.open("trained", writable=False) as session:
        assert {pos: lab.cls for pos, lab in session.store.labels().items()} == labels
        assert [m.state for m in session.store.models()] == ["current"]


@pytest.mark.slow
def test_train_without_a_label_of_one_class_trains_and_says_so(run_cli, trained):
    # relabel every 'none' as 'vertical': the model trains on two classes and says so
    with Session.open("trained") as session:
        nones = [
            lab
            for lab in session.store.labels().values()
            if lab.cls == "none" and lab.source != "holdout"
        ]
        assert nones
        session.store.import_labels([(lab.rx, lab.ry, "vertical", "manual") for lab in nones])
    result = run_cli("train", "trained", "--epochs", 2, "--promote")
    assert result.code == 0, result.err
    assert "trained without a label of none" in result.out
    status = json.loads(run_cli("status", "trained", "--json").out)
    assert status["model_absent_classes"] == ["none"]
    assert status["classes_without_labels"] == ["none"]
    assert "trained without a label of none" in run_cli("status", "trained").out


@pytest.mark.slow
def test_corrupt_label_database(run_cli, trained, tmp_path):
    for suffix in ("-wal", "-shm"):
        (trained / f"labels.sqlite{suffix}").unlink(missing_ok=True)
    (trained / "labels.sqlite").write_bytes(b"definitely not sqlite " * 300)
    before = snapshot(trained)
    for args in (
        ["train", "trained"],
        ["status", "trained"],
        ["predict", "trained", "--out", tmp_path / "x.h5"],
    ):
        assert_one_line_error(run_cli(*args), "label database is corrupt or not SQLite")
    assert snapshot(trained) == before


@pytest.mark.parametrize(
    "garbage", [b"\x00" * 10, b"PK\x03\x04 truncated zip" * 40], ids=["zeros", "zip-like"]
)
@pytest.mark.slow
def test_predict_with_a_damaged_checkpoint(run_cli, trained, tmp_path, garbage):
    checkpoint = checkpoint_of(trained)
    checkpoint.write_bytes(garbage)
    out = tmp_path / "p.h5"
    for args in (["--round", 1], ["--model", 1], []):
        line = assert_one_line_error(run_cli("predict", "trained", "--out", out, *args))
        assert checkpoint.name in line and "checkpoint" in line
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    assert_one_line_error(
        run_cli("predict", "trained", "--out", out, "--round", 7), "no model of round 7"
    )


def test_predict_without_a_model(run_cli, make_session, tmp_path):
    make_session("untrained").close()
    assert_one_line_error(
        run_cli("predict", "untrained", "--out", tmp_path / "p.h5"), "no trained model"
    )
    assert_one_line_error(
        run_cli("export", "untrained", "--out", tmp_path / "e"),
        "no trained model",
        "ghosttui train",
    )


def edit_toml(folder, change):
    path = folder / "session.toml"
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    change(doc)
    import tomli_w

    path.write_text(tomli_w.dumps(doc), encoding="utf-8")


@pytest.mark.slow
def test_a_checkpoint_from_another_session_is_refused(run_cli, trained, sessions_dir, tmp_path):
    twin = sessions_dir / "twin"
    shutil.copytree(trained, twin)
    edit_toml(twin, lambda doc: doc.update(name="twin", id="0" * 32))
    assert_one_line_error(
        run_cli("predict", "twin", "--out", tmp_path / "p.h5"), "belongs to another session"
    )


@pytest.mark.slow
def test_a_checkpoint_with_other_classes_is_refused(run_cli, trained, tmp_path):
    def rename(doc):
        doc["classes"][2]["name"] = "nonpolar"

    edit_toml(trained, rename)
    assert_one_line_error(
        run_cli("predict", "trained", "--out", tmp_path / "p.h5", "--round", 1),
        "differ from horizontal,vertical,nonpolar",
    )


@pytest.mark.slow
def test_exports_are_atomic(run_cli, trained, tmp_path, monkeypatch):
    out = tmp_path / "export"
    assert run_cli("export", "trained", "--out", out).code == 0
    before = snapshot(out)
    assert len(before) == 7  # six files and their manifest

    def half_written_png(self, fp, *args, **kwargs):
        with open(fp, "wb") as handle:
            handle.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", half_written_png)
    assert run_cli("export", "trained", "--out", out).code != 0
    assert snapshot(out) == before
    monkeypatch.undo()

    from ghosttui.model.outputs import PredictionWriter

    original_add = PredictionWriter.add

    def failing_add(self, probabilities, group=None, **attrs):
        original_add(self, probabilities[:2], group, **attrs)  # part of it on disk
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(PredictionWriter, "add", failing_add)
    result = run_cli("export", "trained", "--out", out)
    assert result.code != 0
    after = snapshot(out)
    assert after["predictions.h5"] == before["predictions.h5"]
    assert sorted(after) == sorted(before)  # no temporary files left beside them
    with h5py.File(out / "predictions.h5", "r") as f:
        assert f["probabilities"].shape == (24, 16, 3)


@pytest.mark.slow
def test_exported_maps_have_a_scale_bar_from_the_scans_calibration(run_cli, trained, tmp_path):
    """The simulated scan is calibrated at 1 nm per position: 16 positions across, a 2 nm bar."""
    from ghosttui.export import enlargement
    from ghosttui.render.scale_bar import scale_bar

    with Session.open("trained", writable=False) as session:
        calibration = session.calibration()
    assert (calibration.r_pixel_size, calibration.r_units) == (1.0, "nm")
    out = tmp_path / "export"
    assert run_cli("export", "trained", "--out", out).code == 0
    per_position = enlargement((24, 16))
    bar = scale_bar(1.0, "nm", 16, per_position)
    assert bar is not None and bar.label == "2 nm"
    for name in ("domain_map_large.png", "confidence_map.png"):
        image = np.asarray(Image.open(out / name).convert("RGB"))
        map_bottom = 45 + 24 * per_position
        # below the map, left of the bar's label (which starts 10 pixels after the bar)
        below = (image[map_bottom:, : 15 + round(bar.pixels) + 6] == 0).all(-1)
        rows = np.flatnonzero(below.any(1))
        assert len(rows) == 8, name  # one bar, 8 pixels thick
        cols = np.flatnonzero(below[rows[0]])
        assert (cols[0], len(cols)) == (15, round(bar.pixels) + 1), name
    # the pixel-exact map stays one pixel per position, without decoration
    assert Image.open(out / "domain_map.png").size == (16, 24)


@pytest.mark.slow
def test_predict_output_is_kept_by_a_rerun_and_by_a_failed_overwrite(
    run_cli, trained, tmp_path, monkeypatch
):
    out = tmp_path / "p.h5"
    assert run_cli("predict", "trained", "--out", out).code == 0
    before = read_predictions(out)
    assert before["node_attrs"]["complete"]

    import ghosttui.inference.blocks as blocks

    calls = []
    original = blocks.classify_block

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(blocks, "classify_block", counting)
    # the same model again: the scan is already there, nothing is classified or written
    result = run_cli("predict", "trained", "--out", out)
    assert result.code == 0, result.err
    assert "0 scans classified, 1 already there" in result.out
    assert calls == []
    np.testing.assert_array_equal(read_predictions(out)["probabilities"], before["probabilities"])

    def broken(*args, **kwargs):
        raise RuntimeError("the GPU fell over")

    monkeypatch.setattr(blocks, "classify_block", broken)
    snapshot_before = out.read_bytes()
    assert run_cli("predict", "trained", "--out", out, "--overwrite").code == 1
    assert out.read_bytes() == snapshot_before
    assert [p.name for p in tmp_path.iterdir()] == ["p.h5"]


@pytest.mark.slow
def test_cancelled_training_saves_nothing(trained):
    before = snapshot(trained)
    with Session.open("trained") as session:
        with pytest.raises(TrainingCancelled):
            train_now(session, epochs=EPOCHS, should_stop=lambda: True)
        assert len(session.store.models()) == 1
    after = snapshot(trained)
    assert sorted(after) == sorted(before)
    assert after == before


def test_rotation_swap_is_named_by_class(make_session):
    session = make_session("rot")
    spec = session.settings.model
    spec.rotation_swap = [["horizontal", "vertical"]]
    assert rotation_pairs(spec, session.classes) == [(0, 1)]
    spec.rotation_swap = [["horizontal", "diagonal"]]
    with pytest.raises(ModelError, match="unknown class 'diagonal'"):
        rotation_pairs(spec, session.classes)
    plain = make_session("plain")
    assert rotation_pairs(plain.settings.model, plain.classes) == []
