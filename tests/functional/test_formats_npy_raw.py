"""Round trips through .npy files written by numpy and raw binary files written by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ghosttui.data import LoadOptions, open_scan
from ghosttui.data.layout import row_pieces
from ghosttui.errors import DataError


def cube(shape: tuple[int, ...], dtype: str = "uint16", seed: int = 0) -> np.ndarray:
    """Distinct values per pattern so that any mix-up of positions shows."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 200, shape).astype(dtype)


# -- .npy ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["uint8", "uint16", ">u2", "int32", "float32", "float64"])
def test_npy_4d_round_trip_is_memory_mapped(tmp_path, dtype):
    data = cube((5, 7, 9, 6), dtype)
    path = tmp_path / "scan.npy"
    np.save(path, data)
    with open_scan(path) as scan:
        assert scan.format == "NumPy .npy"
        assert scan.shape == (5, 7, 9, 6)
        assert scan.dtype == np.dtype(dtype)
        assert isinstance(scan._source, np.memmap), "a .npy must be memory-mapped, not loaded"
        assert np.array_equal(scan.read(0, 35), data.reshape(35, 9, 6))
        assert np.array_equal(scan.pattern(3, 5), data[3, 5])
        # a range that starts and ends inside scan rows
        assert np.array_equal(scan.read(4, 23), data.reshape(35, 9, 6)[4:23])


def test_npy_fortran_order_round_trip(tmp_path):
    data = np.asfortranarray(cube((4, 3, 5, 6), "int32"))
    path = tmp_path / "fortran.npy"
    np.save(path, data)
    with open_scan(path) as scan:
        assert np.array_equal(scan.read(0, 12), np.ascontiguousarray(data).reshape(12, 5, 6))


def test_npy_stack_with_scan_is_row_major(tmp_path):
    stack = cube((12, 8, 8), "float32")
    path = tmp_path / "stack.npy"
    np.save(path, stack)
    with open_scan(path, LoadOptions(scan=(3, 4))) as scan:
        assert scan.shape == (3, 4, 8, 8)
        for rx in range(3):
            for ry in range(4):
                assert np.array_equal(scan.pattern(rx, ry), stack[rx * 4 + ry])
        assert np.array_equal(scan.read(0, 12), stack)


def test_npy_stack_without_scan_asks_for_it(tmp_path):
    path = tmp_path / "stack.npy"
    np.save(path, cube((12, 8, 8)))
    with pytest.raises(DataError, match=r"stack of 12 patterns.*--scan RXxRY") as info:
        open_scan(path)
    assert info.value.path == path


def test_npy_4d_reshaped_by_scan(tmp_path):
    data = cube((2, 6, 5, 5))
    path = tmp_path / "scan.npy"
    np.save(path, data)
    flat = data.reshape(12, 5, 5)
    with open_scan(path, LoadOptions(scan=(4, 3))) as scan:
        assert scan.shape == (4, 3, 5, 5)
        for rx in range(4):
            for ry in range(3):
                assert np.array_equal(scan.pattern(rx, ry), flat[rx * 3 + ry])


def test_npy_scan_equal_to_own_shape_changes_nothing(tmp_path):
    data = cube((2, 6, 5, 5))
    path = tmp_path / "scan.npy"
    np.save(path, data)
    with open_scan(path, LoadOptions(scan=(2, 6))) as scan:
        assert scan.shape == (2, 6, 5, 5)
        assert np.array_equal(scan.pattern(1, 4), data[1, 4])


@pytest.mark.parametrize("scan_shape", [(5, 5), (13, 1)])
def test_npy_scan_not_matching_pattern_count(tmp_path, scan_shape):
    path = tmp_path / "scan.npy"
    np.save(path, cube((2, 6, 5, 5)))
    with pytest.raises(DataError, match=r"holds 12"):
        open_scan(path, LoadOptions(scan=scan_shape))


def test_read_outside_scan_is_an_index_error(tmp_path):
    path = tmp_path / "scan.npy"
    np.save(path, cube((2, 3, 4, 4)))
    with open_scan(path) as scan:
        with pytest.raises(IndexError):
            scan.pattern(2, 0)
        with pytest.raises(IndexError):
            scan.read(0, 7)


def test_blocks_cover_the_scan_in_order(tmp_path):
    data = cube((3, 5, 4, 4))
    path = tmp_path / "scan.npy"
    np.save(path, data)
    with open_scan(path) as scan:
        blocks = list(scan.blocks(4))
    assert [start for start, _ in blocks] == [0, 4, 8, 12]
    assert np.array_equal(np.concatenate([b for _, b in blocks]), data.reshape(15, 4, 4))


def test_row_pieces_cover_every_range_exactly():
    for n_ry in (1, 2, 5, 7):
        total = 4 * n_ry
        for start in range(total + 1):
            for stop in range(start, total + 1):
                covered = []
                for key, count in row_pieces(start, stop, n_ry):
                    if isinstance(key, slice):
                        rows = range(key.start, key.stop)
                        covered += [rx * n_ry + ry for rx in rows for ry in range(n_ry)]
                    else:
                        rx, cols = key
                        covered += [rx * n_ry + ry for ry in range(cols.start, cols.stop)]
                    assert count > 0
                assert covered == list(range(start, stop)), (n_ry, start, stop)


# -- raw binary --------------------------------------------------------------------------
@pytest.mark.parametrize(("dtype", "offset"), [(">u2", 0), ("<u2", 384), ("float32", 17)])
def test_raw_binary_round_trip(tmp_path, dtype, offset):
    data = cube((3, 2, 10, 12), dtype)
    path = tmp_path / "frames.bin"  # .bin would be a K2 file; --detector makes it raw
    path.write_bytes(b"H" * offset + data.tobytes())
    options = LoadOptions(scan=(3, 2), detector=(10, 12), dtype=dtype, offset=offset)
    with open_scan(path, options) as scan:
        assert scan.format == "raw binary"
        assert scan.shape == (3, 2, 10, 12)
        assert scan.dtype == np.dtype(dtype)
        assert np.array_equal(scan.read(0, 6), data.reshape(6, 10, 12))
        assert np.array_equal(scan.pattern(2, 1), data[2, 1])


def test_raw_binary_extra_bytes_after_the_frames_are_ignored(tmp_path):
    data = cube((2, 2, 4, 4))
    path = tmp_path / "frames.dat"
    path.write_bytes(data.tobytes() + b"trailer")
    options = LoadOptions(scan=(2, 2), detector=(4, 4), dtype="uint16")
    with open_scan(path, options) as scan:
        assert np.array_equal(scan.read(0, 4), data.reshape(4, 4, 4))


def test_raw_binary_too_short(tmp_path):
    path = tmp_path / "frames.dat"
    path.write_bytes(cube((5, 8, 8)).tobytes()[:-1])  # 4 whole frames and a bit
    options = LoadOptions(scan=(5, 1), detector=(8, 8), dtype="uint16")
    with pytest.raises(DataError, match=r"holds 4 frames of 8x8 uint16.*needs 5"):
        open_scan(path, options)


def test_raw_binary_offset_past_the_end(tmp_path):
    path = tmp_path / "frames.dat"
    path.write_bytes(bytes(100))
    options = LoadOptions(scan=(1, 1), detector=(4, 4), dtype="uint8", offset=200)
    with pytest.raises(DataError, match=r"holds 0 frames"):
        open_scan(path, options)


def test_raw_binary_needs_all_three_options(tmp_path):
    path = tmp_path / "frames.dat"
    path.write_bytes(bytes(64))
    with pytest.raises(DataError, match=r"--scan RXxRY, --detector QXxQY and --dtype"):
        open_scan(path, LoadOptions(detector=(4, 4), dtype="uint8"))
