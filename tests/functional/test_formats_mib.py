"""Quantum Detectors Merlin .mib files, written here from the format's specification.

A .mib file is a sequence of frames; each frame is an ASCII header followed by
the pixels. For one Medipix3 chip (256 x 256, "1x1" layout) the header is
exactly 384 bytes: comma-separated fields

    MQ1, frame number (6 digits), data offset (5 digits: 00384), number of chips
    (2 digits), width (4 digits), height (4 digits), pixel depth (U08/U16/U32/R64),
    sensor layout ("   1x1"), chip select, timestamp "YYYY-MM-DD HH:MM:SS.ffffff",
    shutter time (s), counter, colour mode, gain mode, thresholds 0..7, DAC format
    and values, then an extended part: "MQ1A", an ISO timestamp, the exposure in
    ns and the counter depth,

padded to 384 bytes (here with NUL bytes, where py4DSTEM's reader stops). Pixels
of a U16 frame are big-endian 16-bit counts (12-bit counter depth). The scan
shape is not in the .mib: acquisition software writes it to a text .hdr file
beside it (tab-separated "ScanX:" and "ScanY:" lines), or the user gives it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ghosttui.data import LoadOptions, open_scan
from ghosttui.errors import DataError
from ghosttui.patterns.cache import open_or_build
from ghosttui.patterns.settings import PreprocessSettings

HEADER_BYTES = 384
SIDE = 256


def mib_header(frame_number: int) -> bytes:
    thresholds = ["1.000000E+1"] + ["0.000000E+0"] * 7
    dacs = ["3RX", "175", "511", "000", "000", "000", "000", "000", "000", "125", "255"]
    fields = [
        "MQ1",
        f"{frame_number:06d}",
        f"{HEADER_BYTES:05d}",
        "01",
        f"{SIDE:04d}",
        f"{SIDE:04d}",
        "U16",
        "   1x1",
        "01",
        "2024-05-17 12:00:00.000000",
        "0.001000",
        "0",
        "0",
        "0",
        *thresholds,
        *dacs,
        "MQ1A",
        "2024-05-17T12:00:00.000000000Z",
        "1000000ns",
        "12",
    ]
    text = ",".join(fields).encode("ascii")
    assert len(text) < HEADER_BYTES
    return text + b"\x00" * (HEADER_BYTES - len(text))


def known_frames(n: int) -> np.ndarray:
    """``n`` 256x256 frames whose pixels identify frame and position (12-bit counts)."""
    qx, qy = np.indices((SIDE, SIDE))
    frames = [(qx * 7 + qy * 3 + 401 * i) % 4096 for i in range(n)]
    frames = np.stack(frames).astype(np.uint16)
    frames[:, 100, 100] = np.arange(n) + 1  # a spot that holds the frame number
    return frames


def write_mib(path: Path, frames: np.ndarray) -> Path:
    with open(path, "wb") as f:
        for i, frame in enumerate(frames):
            f.write(mib_header(i + 1))
            f.write(np.asarray(frame, dtype=">u2").tobytes())
    return path


def write_hdr(mib: Path, scan_x: int, scan_y: int) -> Path:
    hdr = mib.with_suffix(".hdr")
    hdr.write_text(
        "HDR,\t\n"
        "Time and Date Stamp (day, mnth, yr, hr, min, s):\t17/05/2024 12:00:00\n"
        "Chip ID:\tW530_H7,-,-,-\n"
        "Frames in Acquisition (Number):\t6\n"
        f"ScanX:\t{scan_x}\n"
        f"ScanY:\t{scan_y}\n"
        "End\t\n"
    )
    return hdr


@pytest.fixture
def mib_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    frames = known_frames(6)
    return write_mib(tmp_path / "scan.mib", frames), frames


def test_mib_file_layout_follows_the_specification(mib_file):
    path, frames = mib_file
    raw = path.read_bytes()
    frame_bytes = HEADER_BYTES + SIDE * SIDE * 2
    assert len(raw) == 6 * frame_bytes
    second = raw[frame_bytes : frame_bytes + HEADER_BYTES].split(b"\x00")[0].decode().split(",")
    assert second[:9] == ["MQ1", "000002", "00384", "01", "0256", "0256", "U16", "   1x1", "01"]
    pixel = raw[frame_bytes + HEADER_BYTES : frame_bytes + HEADER_BYTES + 2]
    assert int.from_bytes(pixel, "big") == frames[1, 0, 0]


def test_mib_round_trip_with_scan(mib_file):
    path, frames = mib_file
    with open_scan(path, LoadOptions(scan=(3, 2))) as scan:
        assert scan.format == "Merlin MIB"
        assert scan.shape == (3, 2, SIDE, SIDE)
        assert scan.dtype.kind == "u" and scan.dtype.itemsize == 2
        for index in range(6):
            rx, ry = divmod(index, 2)
            assert np.array_equal(scan.pattern(rx, ry), frames[index]), (rx, ry)
        assert np.array_equal(scan.read(1, 5), frames[1:5])


def test_mib_without_scan_or_hdr_asks_for_scan(mib_file):
    path, _ = mib_file
    with pytest.raises(DataError, match=r"6 frames of 256x256.*--scan RXxRY") as info:
        open_scan(path)
    assert info.value.path == path


@pytest.mark.parametrize(("scan_x", "scan_y"), [(2, 3), (3, 2), (6, 1)])
def test_mib_scan_shape_from_hdr(mib_file, scan_x, scan_y):
    path, frames = mib_file
    write_hdr(path, scan_x, scan_y)
    with open_scan(path) as scan:
        # ScanX counts positions along a scan line (Ry), ScanY the lines (Rx)
        assert scan.shape == (scan_y, scan_x, SIDE, SIDE)
        assert np.array_equal(scan.pattern(scan_y - 1, scan_x - 1), frames[5])
        assert np.array_equal(scan.pattern(0, 1), frames[1])


def test_mib_scan_option_wins_over_hdr(mib_file):
    path, frames = mib_file
    write_hdr(path, 2, 3)
    with open_scan(path, LoadOptions(scan=(1, 6))) as scan:
        assert scan.shape == (1, 6, SIDE, SIDE)
        assert np.array_equal(scan.pattern(0, 4), frames[4])


@pytest.mark.parametrize("scan_shape", [(4, 2), (5, 1), (2, 2)])
def test_mib_scan_not_matching_frame_count(mib_file, scan_shape):
    path, _ = mib_file
    with pytest.raises(DataError, match=r"but the stack holds 6"):
        open_scan(path, LoadOptions(scan=scan_shape))


def test_mib_hdr_with_wrong_scan_size(mib_file):
    path, _ = mib_file
    write_hdr(path, 4, 4)
    with pytest.raises(DataError, match=r"--scan 4x4 gives 16 patterns but the stack holds 6"):
        open_scan(path)


def test_mib_garbage_is_a_data_error(tmp_path):
    path = tmp_path / "garbage.mib"
    path.write_bytes(b"MQ1,not,a,header" + bytes(500))
    with pytest.raises(DataError, match=r"could not be read as Merlin MIB"):
        open_scan(path, LoadOptions(scan=(1, 1)))


def test_mib_preprocessed_through_the_cache(mib_file, cache_dir):
    path, frames = mib_file
    settings = PreprocessSettings(size=32, transform="linear", normalise="none", hot_pixels=False)
    with open_or_build(path, LoadOptions(scan=(3, 2)), settings) as cache:
        assert cache.shape == (3, 2, 32, 32)
        patterns = cache.read(0, 6)
    # linear sum pooling by 8: each output pixel is the sum of an 8x8 block of counts
    expected = frames.reshape(6, 32, 8, 32, 8).sum(axis=(2, 4)).astype(np.float32)
    assert np.allclose(patterns, expected, rtol=1e-3)
