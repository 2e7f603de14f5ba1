"""Real Gatan DigitalMicrograph files (from HyperSpy's test data, see data/README.md),
read through py4DSTEM's own DM reader."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import DATA
from ncempy.io import dm

from ghosttui.data import LoadOptions, open_scan
from ghosttui.errors import DataError

STACK_DM3 = DATA / "dm" / "test_stackbuilder_imagestack.dm3"
FLOAT_DM4 = DATA / "dm" / "test-2.dm4"
COMPLEX_DM4 = DATA / "dm" / "test-3.dm4"


def ncempy_data(path) -> np.ndarray:
    """The array as ncempy's own DM reader returns it."""
    with dm.fileDM(str(path)) as f:
        return np.asarray(f.getDataset(0)["data"])


def test_dm3_image_stack_with_scan():
    reference = ncempy_data(STACK_DM3)
    assert reference.shape == (3, 2, 16)  # 3 frames of 2 x 16 ("stackbuilder_test4_16x2")
    with open_scan(STACK_DM3, LoadOptions(scan=(3, 1))) as scan:
        assert scan.format == "Gatan DM"
        assert scan.shape == (3, 1, 2, 16)
        assert scan.dtype == reference.dtype == np.uint32
        assert np.array_equal(scan.read(0, 3), reference)
        for frame in range(3):
            assert np.array_equal(scan.pattern(frame, 0), reference[frame])


def test_dm3_image_stack_other_scan_order():
    reference = ncempy_data(STACK_DM3)
    with open_scan(STACK_DM3, LoadOptions(scan=(1, 3))) as scan:
        assert scan.shape == (1, 3, 2, 16)
        assert np.array_equal(scan.pattern(0, 2), reference[2])


def test_dm3_image_stack_without_scan_asks_for_it():
    with pytest.raises(DataError, match=r"stack of 3 patterns.*--scan RXxRY") as info:
        open_scan(STACK_DM3)
    assert info.value.path == STACK_DM3


def test_dm3_image_stack_wrong_scan():
    with pytest.raises(DataError, match=r"--scan 2x2 gives 4 patterns but the stack holds 3"):
        open_scan(STACK_DM3, LoadOptions(scan=(2, 2)))


def test_dm4_3d_with_scan():
    # HyperSpy's test suite states the content of this file: 1..8 as float32, (2, 2, 2)
    documented = np.arange(1, 9, dtype=np.float32).reshape(2, 2, 2)
    assert np.array_equal(ncempy_data(FLOAT_DM4), documented)
    with open_scan(FLOAT_DM4, LoadOptions(scan=(2, 1))) as scan:
        assert scan.format == "Gatan DM"
        assert scan.shape == (2, 1, 2, 2)
        assert scan.dtype == np.float32
        assert np.array_equal(scan.pattern(0, 0), documented[0])
        assert np.array_equal(scan.pattern(1, 0), documented[1])


def test_dm4_3d_without_scan_asks_for_it():
    with pytest.raises(DataError, match=r"stack of 2 patterns.*--scan RXxRY"):
        open_scan(FLOAT_DM4)


def test_dm4_complex_data_is_refused():
    with pytest.raises(DataError, match=r"complex64 data; need integer or float counts"):
        open_scan(COMPLEX_DM4, LoadOptions(scan=(2, 1)))


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_damaged_dm4_is_a_data_error(tmp_path, damage):
    path = tmp_path / "damaged.dm4"
    if damage == "truncated":
        real = FLOAT_DM4.read_bytes()
        path.write_bytes(real[: len(real) // 2])
    else:
        path.write_bytes(np.random.default_rng(5).bytes(4096))
    with pytest.raises(DataError, match=r"could not be read as Gatan DM by py4DSTEM") as info:
        open_scan(path, LoadOptions(scan=(2, 1)))
    assert "\n" not in str(info.value)
    assert info.value.path == path


def test_dm_extension_is_case_insensitive(tmp_path):
    path = tmp_path / "STACK.DM3"
    shutil.copyfile(STACK_DM3, path)
    with open_scan(path, LoadOptions(scan=(3, 1))) as scan:
        assert scan.shape == (3, 1, 2, 16)
