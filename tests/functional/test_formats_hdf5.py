"""HDF5 files written by h5py, by py4DSTEM's own EMD writer, and a real Prismatic EMD file."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
from conftest import DATA

from ghosttui.data import LoadOptions, open_scan
from ghosttui.errors import DataError

PRISMATIC = DATA / "emd" / "Si100_4D.emd"
DEPTH0 = "/4DSTEM_simulation/data/datacubes/CBED_array_depth0000/datacube"
DEPTH1 = "/4DSTEM_simulation/data/datacubes/CBED_array_depth0001/datacube"


def cube(shape: tuple[int, ...], dtype: str = "uint16", seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1000, shape).astype(dtype)


# -- plain HDF5 -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "create"),
    [
        ("/data", {}),
        ("/experiment/run1/cube", {}),
        ("/compressed", {"chunks": (1, 4, 8, 8), "compression": "gzip"}),
    ],
    ids=["root", "nested", "chunked-gzip"],
)
def test_plain_hdf5_single_4d_dataset_found(tmp_path, name, create):
    data = cube((3, 5, 8, 8))
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(name, data=data, **create)
        f["notes"] = np.arange(10)  # other datasets must not confuse the search
        f["image2d"] = np.zeros((8, 8))
    with open_scan(path) as scan:
        assert scan.format == "HDF5"
        assert scan.dataset == name
        assert scan.shape == (3, 5, 8, 8)
        assert scan.dtype == np.uint16
        assert np.array_equal(scan.read(0, 15), data.reshape(15, 8, 8))
        assert np.array_equal(scan.read(2, 13), data.reshape(15, 8, 8)[2:13])
        assert np.array_equal(scan.pattern(2, 4), data[2, 4])


@pytest.mark.parametrize("as_bytes", [False, True])
def test_plain_hdf5_calibration_attributes(tmp_path, as_bytes):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("data", data=cube((2, 2, 4, 4)))
        d.attrs["R_pixel_size"] = 0.75
        d.attrs["R_pixel_units"] = b"nm" if as_bytes else "nm"
        d.attrs["Q_pixel_size"] = np.float32(0.0125)
        d.attrs["Q_pixel_units"] = b"A^-1" if as_bytes else "A^-1"
    with open_scan(path) as scan:
        cal = scan.calibration
    assert cal.r_pixel_size == pytest.approx(0.75)
    assert cal.r_units == "nm"
    assert cal.q_pixel_size == pytest.approx(0.0125)
    assert cal.q_units == "A^-1"


def test_plain_hdf5_without_calibration(tmp_path):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        f["data"] = cube((2, 2, 4, 4))
    with open_scan(path) as scan:
        assert not scan.calibration.known
        assert scan.calibration.describe() == "none in file"


def test_hdf5_two_4d_datasets_need_dataset(tmp_path):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["a/raw"] = cube((2, 3, 4, 4), seed=1)
        f["b/processed"] = cube((2, 3, 4, 4), seed=2)
    with pytest.raises(DataError) as info:
        open_scan(path)
    message = str(info.value)
    assert "/a/raw" in message
    assert "/b/processed" in message
    assert "--dataset" in message
    assert info.value.path == path


@pytest.mark.parametrize(("dataset", "seed"), [("/a/raw", 1), ("b/processed", 2)])
def test_hdf5_dataset_option_selects_one(tmp_path, dataset, seed):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["a/raw"] = cube((2, 3, 4, 4), seed=1)
        f["b/processed"] = cube((2, 3, 4, 4), seed=2)
    with open_scan(path, LoadOptions(dataset=dataset)) as scan:
        assert scan.dataset == "/" + dataset.lstrip("/")
        assert np.array_equal(scan.read(0, 6), cube((2, 3, 4, 4), seed=seed).reshape(6, 4, 4))


def test_hdf5_dataset_option_naming_nothing(tmp_path):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        f["a/raw"] = cube((2, 3, 4, 4))
    with pytest.raises(DataError, match=r"has no dataset /a/nope .*4D/3D datasets: /a/raw"):
        open_scan(path, LoadOptions(dataset="a/nope"))
    with pytest.raises(DataError, match=r"has no dataset /a"):  # a group, not a dataset
        open_scan(path, LoadOptions(dataset="a"))


def test_hdf5_stack_with_scan(tmp_path):
    stack = cube((6, 5, 7), "float32")
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as f:
        f["frames"] = stack
    with open_scan(path, LoadOptions(scan=(2, 3))) as scan:
        assert scan.shape == (2, 3, 5, 7)
        assert scan.dataset == "/frames"
        for rx in range(2):
            for ry in range(3):
                assert np.array_equal(scan.pattern(rx, ry), stack[rx * 3 + ry])


def test_hdf5_stack_without_scan_names_it(tmp_path):
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as f:
        f["frames"] = cube((6, 5, 7))
    with pytest.raises(DataError, match=r"3D stacks: /frames.*--scan RXxRY"):
        open_scan(path)


def test_hdf5_stack_scan_mismatch(tmp_path):
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as f:
        f["frames"] = cube((6, 5, 7))
    with pytest.raises(DataError, match=r"--scan 4x2 gives 8 patterns but the stack at /frames"):
        open_scan(path, LoadOptions(scan=(4, 2)))


def test_hdf5_4d_cannot_be_reshaped_by_scan(tmp_path):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        f["data"] = cube((2, 6, 4, 4))
    with pytest.raises(DataError, match=r"cannot re-shape"):
        open_scan(path, LoadOptions(scan=(3, 4)))


def test_hdf5_found_by_signature_without_known_extension(tmp_path):
    data = cube((2, 2, 4, 4))
    path = tmp_path / "acquisition.dat"
    with h5py.File(path, "w") as f:
        f["data"] = data
    with open_scan(path) as scan:
        assert scan.format == "HDF5"
        assert np.array_equal(scan.read(0, 4), data.reshape(4, 4, 4))


def test_hdf5_file_is_closed_by_scan_close(tmp_path):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        f["data"] = cube((2, 2, 4, 4))
    scan = open_scan(path)
    # h5py refuses to open a file for writing while this process holds it open for reading
    with pytest.raises(OSError):
        h5py.File(path, "a")
    scan.close()
    with h5py.File(path, "a") as f:
        f["more"] = np.zeros(3)
    with h5py.File(path, "r") as f:
        assert f["more"].shape == (3,)


# -- py4DSTEM's own EMD writer ------------------------------------------------------------
def test_py4dstem_emd_written_by_py4dstem(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import py4DSTEM

    data = cube((4, 3, 10, 12), "float32")
    datacube = py4DSTEM.DataCube(data=data)
    datacube.calibration.set_Q_pixel_size(0.0235)
    datacube.calibration.set_Q_pixel_units("A^-1")
    datacube.calibration.set_R_pixel_size(1.75)
    datacube.calibration.set_R_pixel_units("nm")
    path = tmp_path / "written_by_py4dstem.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        py4DSTEM.save(str(path), datacube, mode="o")

    with open_scan(path) as scan:
        assert scan.format == "py4DSTEM EMD"
        assert scan.shape == (4, 3, 10, 12)
        assert scan.dtype == np.float32
        assert np.array_equal(scan.read(0, 12), data.reshape(12, 10, 12))
        assert np.array_equal(scan.pattern(3, 2), data[3, 2])
        cal = scan.calibration
    assert cal.r_pixel_size == pytest.approx(1.75)
    assert cal.r_units == "nm"
    assert cal.q_pixel_size == pytest.approx(0.0235)
    assert cal.q_units == "A^-1"


# -- a real Prismatic EMD file ----------------------------------------------------------------
def test_prismatic_emd_two_datacubes_need_dataset():
    with pytest.raises(DataError) as info:
        open_scan(PRISMATIC)
    message = str(info.value)
    assert DEPTH0 in message
    assert DEPTH1 in message
    assert "--dataset" in message


@pytest.mark.parametrize("dataset", [DEPTH0, DEPTH1, DEPTH0.lstrip("/")])
def test_prismatic_emd_with_dataset(dataset):
    with h5py.File(PRISMATIC, "r") as f:
        expected = f[dataset][()]
        parameters = dict(
            f["4DSTEM_simulation/metadata/metadata_0/original/simulation_parameters"].attrs
        )
    with open_scan(PRISMATIC, LoadOptions(dataset=dataset)) as scan:
        assert scan.format == "EMD"
        assert scan.shape == (11, 11, 8, 8)
        assert scan.dtype == np.float32
        assert np.array_equal(scan.read(0, 121), expected.reshape(121, 8, 8))
        cal = scan.calibration
    # the probe step Prismatic was run with is the real-space pixel size of the dim vectors
    assert cal.r_pixel_size == pytest.approx(float(parameters["rx"]))
    # Prismatic writes its units as "[n_m]" and "[n_m^-1]"; they are read as plain units
    assert cal.r_units == "nm"
    assert cal.q_units == "nm^-1"
    assert cal.q_pixel_size is not None and cal.q_pixel_size > 0
