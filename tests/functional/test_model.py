"""The networks, training (split, augmentation, determinism, cancelling) and checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ghosttui.errors import ModelError, StorageError
from ghosttui.model.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from ghosttui.model.device import resolve_device
from ghosttui.model.network import GhostNet, PaperCNN, build_network, parameter_count
from ghosttui.model.predict import fuse_for_inference, predict_patterns
from ghosttui.model.train import (
    TrainConfig,
    TrainingCancelled,
    augment_batch,
    class_weights,
    split_validation,
    train,
)
from ghosttui.session.settings import ModelSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
CLASSES = ["horizontal", "vertical", "none"]


def bars(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images: class 0 a bright row, class 1 a bright column, class 2 neither."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    x = rng.normal(0, 0.3, (n, size, size)).astype(np.float32)
    where = rng.integers(4, size - 4, n)
    for i, (cls, k) in enumerate(zip(labels, where, strict=True)):
        if cls == 0:
            x[i, k, :] += 2.0
        elif cls == 1:
            x[i, :, k] += 2.0
    return x, labels


def tiny(epochs: int = 3, **kw) -> TrainConfig:
    return TrainConfig(arch="ghostnet", width=4, epochs=epochs, device="cpu", **kw)


# -- networks -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "n_classes"),
    [
        (GhostNet(3), 3),
        (GhostNet(5, width=8), 5),
        (PaperCNN(3, input_size=64), 3),
        (PaperCNN(9, input_size=64), 9),
        (build_network("paper", 2, 64), 2),
        (build_network("ghostnet", 4, 64, width=4), 4),
    ],
)
def test_outputs_are_batch_by_classes(model, n_classes):
    out = model.eval()(torch.randn(3, 1, 64, 64))
    assert out.shape == (3, n_classes)


def test_paper_cnn_parameters_sit_in_its_dense_layer():
    model = PaperCNN(3, input_size=256)
    total = parameter_count(model)
    # conv 160 + 4,640 + 18,496; fc1 64*32*32*128 + 128; fc2 128*3 + 3
    assert total == 160 + 4_640 + 18_496 + 8_388_736 + 387
    assert 8.3e6 < total < 8.5e6
    assert parameter_count(model.fc1) / total > 0.99
    assert model(torch.randn(1, 1, 256, 256)).shape == (1, 3)


def test_ghostnet_is_small_and_size_agnostic():
    model = GhostNet(3).eval()
    assert 150_000 < parameter_count(model) < 250_000  # ~0.2 M at width 16
    assert parameter_count(model) * 30 < parameter_count(PaperCNN(3, input_size=256))
    for size in (32, 64, 128):
        assert model(torch.randn(2, 1, size, size)).shape == (2, 3)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_network("resnet", 3, 64)


def test_softmax_outputs_sum_to_one():
    torch.manual_seed(0)
    model = GhostNet(4, width=4).eval()
    x = np.random.default_rng(0).normal(size=(7, 32, 32)).astype(np.float32) * 5
    probs = predict_patterns(model, x, CPU)
    assert probs.shape == (7, 4)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_fused_batch_norm_gives_the_same_predictions():
    torch.manual_seed(0)
    model = GhostNet(3, width=4)
    model.train()
    with torch.no_grad():  # move the running statistics away from their defaults
        for _ in range(5):
            model(torch.randn(8, 1, 32, 32) * 3 + 1)
    model.eval()
    fused = fuse_for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # a copy
    x = np.random.default_rng(1).normal(size=(6, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(
        predict_patterns(fused, x, CPU), predict_patterns(model, x, CPU), atol=1e-5
    )


def test_device_choice():
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ModelError, match="unknown --device"):
        resolve_device("quantum")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="no CUDA"):
            resolve_device("cuda")


# -- the validation split ----------------------------------------------------------------------
@pytest.mark.parametrize("counts", [[10, 10, 10], [40, 5, 3], [1, 2, 30], [3, 3, 3], [100, 1, 7]])
def test_validation_split_is_disjoint_complete_and_per_class(counts):
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(5).shuffle(labels)
    train_idx, val_idx = split_validation(labels, 0.2, np.random.default_rng(0))
    assert not set(train_idx) & set(val_idx)
    assert sorted([*train_idx, *val_idx]) == list(range(len(labels)))
    for cls, n in enumerate(counts):
        n_val = int(np.sum(labels[val_idx] == cls))
        n_train = int(np.sum(labels[train_idx] == cls))
        assert n_train >= 1  # every class is trained on
        expected = min(max(1, round(n * 0.2)) if n >= 3 else round(n * 0.2), n - 1)
        assert n_val == expected, (cls, n, n_val)


def test_validation_split_depends_on_the_generator_only():
    labels = np.repeat([0, 1, 2], 20)
    a = split_validation(labels, 0.25, np.random.default_rng(3))
    b = split_validation(labels, 0.25, np.random.default_rng(3))
    c = split_validation(labels, 0.25, np.random.default_rng(4))
    assert np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


@pytest.mark.slow
def test_training_reports_a_validation_set_it_did_not_train_on():
    x, y = bars(30)
    result = train(x, y, 3, tiny())
    assert result.n_train + result.n_val == 30
    assert result.n_val == len(result.val_index) == 6  # 20% of 10 per class
    assert sorted(np.bincount(y[result.val_index], minlength=3)) == [2, 2, 2]
    small = train(*bars(8), 3, tiny())  # too few for a split: train on all
    assert (small.n_train, small.n_val, small.val_accuracy) == (8, 0, None)


# -- augmentation -----------------------------------------------------------------------------
def row_images(n: int, size: int = 32, row: int = 3) -> torch.Tensor:
    x = torch.zeros(n, 1, size, size)
    x[:, 0, row, :] = 1.0
    return x


def orientation(image: torch.Tensor) -> str:
    img = image[0]
    rows = torch.nonzero(img.sum(1) == img.shape[1]).flatten().tolist()
    cols = torch.nonzero(img.sum(0) == img.shape[0]).flatten().tolist()
    if len(rows) == 1 and not cols:
        return "row"
    if len(cols) == 1 and not rows:
        return "column"
    raise AssertionError(f"not a single bar: rows {rows}, cols {cols}")


def test_flips_and_shifts_keep_labels_and_content():
    n, size = 64, 32
    x = row_images(n, size)
    y = torch.arange(n) % 3
    out_x, out_y = augment_batch(x, y, torch.Generator().manual_seed(0), 2, None)
    assert torch.equal(out_y, y)
    positions = []
    for image in out_x:
        assert orientation(image) == "row"  # never rotated without a swap table
        assert image.sum() == size
        positions.append(int(torch.nonzero(image[0].sum(1)).item()))
    near_top = {p for p in positions if p < size // 2}
    near_bottom = {p for p in positions if p >= size // 2}
    assert near_top <= set(range(1, 6))  # row 3 shifted by at most 2
    assert near_bottom <= set(range(26, 31))  # flipped to row 28, shifted by at most 2
    assert near_top and near_bottom
    assert len(set(positions)) > 2  # shifts happen


def test_rotation_swaps_exactly_the_labels_of_rotated_samples():
    n = 96
    x = row_images(n)
    y = torch.arange(n) % 3
    swap = torch.tensor([1, 0, 2])  # horizontal <-> vertical; none stays none
    out_x, out_y = augment_batch(x, y, torch.Generator().manual_seed(1), 1, swap)
    rotated = torch.tensor([orientation(image) == "column" for image in out_x])
    assert 0 < int(rotated.sum()) < n  # some, not all
    assert torch.equal(out_y[rotated], swap[y[rotated]])
    assert torch.equal(out_y[~rotated], y[~rotated])
    assert set(out_y[rotated & (y == 2)].tolist()) <= {2}
    assert (rotated & (y == 0)).any() and (rotated & (y == 1)).any()


def test_rotation_swap_reaches_training_only_when_configured(monkeypatch):
    import ghosttui.model.train as train_module

    seen = []
    original = train_module.augment_batch

    def spy(x, y, generator, max_shift, swap):
        seen.append(None if swap is None else swap.tolist())
        return original(x, y, generator, max_shift, swap)

    monkeypatch.setattr(train_module, "augment_batch", spy)
    x, y = bars(12)
    train(x, y, 3, tiny(epochs=1, rotation_swap=[(0, 1)]))
    assert seen and all(s == [1, 0, 2] for s in seen)
    seen.clear()
    train(x, y, 3, tiny(epochs=1))
    assert seen and all(s is None for s in seen)
    seen.clear()
    train(x, y, 3, tiny(epochs=1, augment=False, rotation_swap=[(0, 1)]))
    assert seen == []


# -- class weights ------------------------------------------------------------------------------
def test_class_weights_balance_the_classes():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 3)
    weights = class_weights(labels, 3)
    counts = np.bincount(labels)
    np.testing.assert_allclose(weights.numpy() * counts, [4.0, 4.0, 4.0], rtol=1e-6)
    missing = class_weights(np.array([0, 0, 1]), 3)
    assert missing[2] == 0 and missing[0] > 0 and missing[1] > missing[0]
    rare = class_weights(np.array([0] * 100 + [1]), 2)
    assert rare[1] == 5.0  # clipped


# -- training -----------------------------------------------------------------------------------
def test_training_is_deterministic_per_seed():
    x, y = bars(24)
    a = train(x, y, 3, tiny(seed=0))
    b = train(x, y, 3, tiny(seed=0))
    c = train(x, y, 3, tiny(seed=1))
    assert a.state_dict.keys() == b.state_dict.keys()
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert a.history == b.history
    assert np.array_equal(a.val_index, b.val_index)
    assert any(not torch.equal(a.state_dict[k], c.state_dict[k]) for k in a.state_dict)


def test_training_learns_an_easy_problem():
    x, y = bars(60)
    result = train(x, y, 3, tiny(epochs=15, patience=100, lr=3e-3))
    model = build_network("ghostnet", 3, 32, width=4)
    model.load_state_dict(result.state_dict)
    test_x, test_y = bars(60, seed=9)
    accuracy = np.mean(predict_patterns(model.eval(), test_x, CPU).argmax(1) == test_y)
    assert accuracy > 0.9, accuracy


def test_progress_is_reported_every_epoch():
    reports = []
    x, y = bars(15)
    result = train(x, y, 3, tiny(epochs=4, patience=100), progress=reports.append)
    assert [p.epoch for p in reports] == [1, 2, 3, 4]
    assert all(p.epochs == 4 for p in reports)
    assert all(p.val_loss is not None and 0 <= p.val_accuracy <= 1 for p in reports)
    assert result.epochs_run == 4 and len(result.history) == 4
    assert 1 <= result.best_epoch <= 4


@pytest.mark.slow
def test_early_stopping_after_patience():
    reports = []
    x, y = bars(15)
    config = tiny(epochs=50, patience=2, min_epochs=3, keep="best")
    result = train(x, y, 3, config, progress=reports.append)
    assert result.epochs_run == len(reports) < 50
    assert result.epochs_run - result.best_epoch >= 2
    assert result.epochs_run >= 3
    assert result.best_epoch >= 3  # epochs before min_epochs are never kept


def test_keep_last_runs_the_whole_schedule_and_keeps_its_end():
    x, y = bars(15)
    result = train(x, y, 3, tiny(epochs=6, patience=1, keep="last"))
    assert result.epochs_run == result.best_epoch == 6  # no early stop, the annealed model
    assert result.val_accuracy is not None  # validation still measures what is kept
    model = build_network("ghostnet", 3, x.shape[-1], width=4)
    model.load_state_dict(result.state_dict)  # the returned state is a complete model


def test_settings_written_by_0_1_still_load():
    spec = ModelSpec.from_dict({"arch": "ghostnet", "keep": "best", "warm_start": True})
    assert spec.arch == "ghostnet" and not hasattr(spec, "keep")


def test_cancelling_raises_and_stops_promptly():
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 3

    reports = []
    x, y = bars(15)
    with pytest.raises(TrainingCancelled):
        train(x, y, 3, tiny(epochs=50), progress=reports.append, should_stop=should_stop)
    assert len(calls) == 4
    assert len(reports) < 50


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [([], "no labels"), ([0, 1, 3], "outside the class list"), ([0, -1, 2], "outside")],
)
def test_training_refuses_bad_labels(labels, fragment):
    x = np.zeros((len(labels), 32, 32), np.float32)
    with pytest.raises(ModelError, match=fragment):
        train(x, np.array(labels, dtype=np.int64), 3, tiny())


# -- checkpoints ---------------------------------------------------------------------------------
def meta(**extra):
    return {
        "arch": "ghostnet",
        "arch_config": {"width": 4},
        "input_size": 32,
        "classes": CLASSES,
        "round": 2,
        "session_id": "abc123",
        "session_name": "mine",
        **extra,
    }


@pytest.fixture
def weights():
    torch.manual_seed(0)
    return GhostNet(3, width=4).state_dict()


def test_checkpoint_round_trip(tmp_path, weights):
    path = save_checkpoint(tmp_path / "sub" / "round-0002.pt", weights, meta(metrics={"a": 1}))
    checkpoint = load_checkpoint(path, session_id="abc123", classes=CLASSES)
    assert checkpoint.round == 2 and checkpoint.classes == CLASSES
    assert checkpoint.meta["metrics"] == {"a": 1}
    assert all(torch.equal(checkpoint.state_dict[k], v) for k, v in weights.items())
    model = checkpoint.build()
    assert not model.training
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 3)
    assert [p.name for p in path.parent.iterdir()] == ["round-0002.pt"]


def _touch(path):  # what an unpickled payload would run
    open(path, "w").close()
    return "ran"


class Booby:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_touch, (self.marker,))


def test_checkpoints_are_loaded_without_unpickling(tmp_path, weights):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save(
        {
            "format": FORMAT,
            "meta": json.dumps(meta()),
            "state_dict": weights,
            "surprise": Booby(str(marker)),
        },
        path,
    )
    with pytest.raises(ModelError, match="corrupt or foreign checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "empty", "tensor", "format", "meta", "shapes", "arch"],
)
def test_damaged_checkpoints_are_one_line_model_errors(tmp_path, weights, damage):
    path = tmp_path / "round-0001.pt"
    save_checkpoint(path, weights, meta())
    good = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x00\x01not a checkpoint\n" * 500)
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "tensor":
        torch.save(torch.zeros(3), path)
    elif damage == "format":
        torch.save({"format": "something-else", "meta": "{}", "state_dict": {}}, path)
    elif damage == "meta":
        torch.save({"format": FORMAT, "meta": "{not json", "state_dict": weights}, path)
    elif damage == "shapes":
        save_checkpoint(path, GhostNet(3, width=8).state_dict(), meta())
    elif damage == "arch":
        save_checkpoint(path, weights, meta(arch="transformer"))
    with pytest.raises(ModelError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ModelError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "round-0009.pt")


def test_foreign_checkpoints_are_refused(tmp_path, weights):
    path = save_checkpoint(tmp_path / "c.pt", weights, meta())
    with pytest.raises(ModelError, match=r"another session \(mine\)"):
        load_checkpoint(path, session_id="other-session")
    with pytest.raises(ModelError, match="differ from"):
        load_checkpoint(path, classes=["vertical", "horizontal", "none"])
    with pytest.raises(ModelError, match="differ from"):
        load_checkpoint(path, classes=["a", "b", "c", "d"])
    assert load_checkpoint(path, session_id="abc123", classes=CLASSES).round == 2


def test_checkpoint_save_is_atomic(tmp_path, weights, monkeypatch):
    import ghosttui.files

    path = save_checkpoint(tmp_path / "round-0001.pt", weights, meta(round=1))
    before = path.read_bytes()

    def failing_fsync(tmp):  # the new bytes are in the temporary file; the disk is full
        assert tmp.read_bytes() != before
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ghosttui.files, "_fsync_file", failing_fsync)
    with pytest.raises(StorageError, match="disk full") as info:
        save_checkpoint(path, GhostNet(3, width=4).state_dict(), meta(round=99))
    assert info.value.path == path
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["round-0001.pt"]
    monkeypatch.undo()
    assert load_checkpoint(path).round == 1
