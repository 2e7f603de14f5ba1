"""The LiberTEM UDF on LiberTEM's inline executor: the same survey and probabilities as
``predict``, over several partitions and LiberTEM's own HDF5 reader."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from conftest import assert_one_line_error

from ghosttui.data.formats import open_scan
from ghosttui.errors import DataError
from ghosttui.inference.jobs import predict_session
from ghosttui.patterns.preprocess import survey
from ghosttui.session.session import Session

lt = pytest.importorskip("libertem.api", reason="LiberTEM is an optional extra: ghosttui[libertem]")
udf_module = pytest.importorskip("ghosttui.inference.udf")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def ctx():
    with lt.Context.make_with("inline") as context:
        yield context


def cube(path):
    with h5py.File(path, "r") as f:
        return f["data"][()]


def test_the_survey_is_the_one_predict_makes(ctx, sim_file, quick_model_session):
    with Session.open(str(quick_model_session), writable=False) as session:
        settings = session.settings.preprocess
    dataset = ctx.load("memory", data=cube(sim_file), num_partitions=3)
    ours = udf_module.survey_dataset(ctx, dataset, settings)
    with open_scan(sim_file) as scan:
        theirs = survey(scan, settings)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours.hot_pixels, theirs.hot_pixels)
    assert ours.beam_centre == pytest.approx(theirs.beam_centre, abs=1e-9)
    assert ours.beam_radius == pytest.approx(theirs.beam_radius, abs=1e-9)
    np.testing.assert_allclose(ours.mean_pattern, theirs.mean_pattern, rtol=1e-6)


def test_the_udf_gives_predicts_probabilities_over_partitions(
    ctx, sim_file, quick_model_session, tmp_path
):
    with Session.open(str(quick_model_session), writable=False) as session:
        (expected,) = predict_session(session, tmp_path / "p.h5", inputs=[sim_file]).outcomes
        udf = udf_module.classifier_udf(ctx, ctx.load("memory", data=cube(sim_file)), session)
    dataset = ctx.load("memory", data=cube(sim_file), num_partitions=3)
    result = ctx.run_udf(dataset=dataset, udf=udf)
    probabilities = np.asarray(result["probabilities"].data)
    assert probabilities.shape == (24, 16, 3)
    np.testing.assert_allclose(probabilities, expected.probabilities, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(np.asarray(result["classes"].data), probabilities.argmax(-1))
    np.testing.assert_array_equal(np.asarray(result["confidence"].data), probabilities.max(-1))


def test_classify_dataset_by_session_name_with_libertems_hdf5_reader(
    ctx, sim_file, quick_model_session, tmp_path
):
    dataset = ctx.load("hdf5", path=str(sim_file), ds_path="/data")
    result = udf_module.classify_dataset(ctx, dataset, str(quick_model_session))
    assert result["class_names"] == ["horizontal", "vertical", "none"]
    assert result["round"] == 1
    with Session.open(str(quick_model_session), writable=False) as session:
        (expected,) = predict_session(session, tmp_path / "p.h5", inputs=[sim_file]).outcomes
    np.testing.assert_allclose(result["probabilities"], expected.probabilities, atol=1e-6)


def test_a_blank_frame_is_named(ctx, sim_file, quick_model_session):
    data = cube(sim_file)
    data[5, 7] = 0
    dataset = ctx.load("memory", data=data, num_partitions=2)
    with pytest.raises(DataError, match=r"pattern \(5, 7\) is all zeros"):
        udf_module.classify_dataset(ctx, dataset, str(quick_model_session))


def test_session_errors_reach_the_user_as_ghost_errors(ctx, sim_file, make_session, run_cli):
    make_session("untrained").close()
    dataset = ctx.load("memory", data=cube(sim_file))
    with pytest.raises(Exception, match="untrained': no trained model") as info:
        udf_module.classify_dataset(ctx, dataset, "untrained")
    assert info.type.__name__ == "SessionError"
    # the same message the command line gives
    assert_one_line_error(
        run_cli("predict", "untrained", "--out", "x.h5"), "untrained': no trained model"
    )
