"""``ghosttui bench``: the loop with a simulated labeller, through the CLI and the core."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_line_error, sim_truth


# -- the bench ---------------------------------------------------------------------------------
def test_bench_command_runs_the_loop_and_writes_json_and_plot(run_cli, sim_file, tmp_path):
    out, plot = tmp_path / "bench.json", tmp_path / "bench.png"
    result = run_cli(
        "bench",
        sim_file,
        "--strategy",
        "random,hybrid",
        "--budget",
        "30",
        "--seed",
        "0",
        "--learner",
        "logreg",
        "--size",
        "32",
        "--json",
        out,
        "--plot",
        plot,
    )
    assert result.code == 0, result.err
    assert "whole-map accuracy" in result.out and "random" in result.out and "hybrid" in result.out
    # one seed: said in the singular, and no "± 0.0%" spread that one run cannot have
    assert "bench: 2 strategies x 1 budget x 1 seed = 2 runs" in result.out
    assert "±" not in result.out and "1 seeds" not in result.out
    assert "1 rounds" not in result.err
    doc = json.loads(out.read_text())
    assert {r["strategy"] for r in doc["runs"]} == {"random", "hybrid"}
    for run in doc["runs"]:
        assert set(run) >= {
            "strategy",
            "budget",
            "seed",
            "accuracy",
            "accuracy_unlabelled",
            "seconds",
        }
        assert run["labels"] == 30 and 0 <= run["accuracy"] <= 1
        assert run["learner"] == "logreg" and run["holdout"] == 5
        assert run["rounds"] >= 2 and 1 <= run["models"] <= run["rounds"]
        # the default inputs, auto: what each run ended with, and the line says mirror when so
        assert run["input_symmetry"] == "auto" and run["symmetry_taken"] in ("none", "mirror")
        symmetric = run["symmetry_taken"] == "mirror"
        line = next(x for x in result.err.splitlines() if f"{run['strategy']} budget" in x)
        assert ("(logreg, mirror-symmetric)" in line) == symmetric, line
    from PIL import Image

    assert Image.open(plot).size[0] > 300


def bench_random_12(run_cli, sim_file, tmp_path, truth: np.ndarray):
    """``bench`` with 12 random logreg labels, seeds 0 and 1, against ``truth``: (result,
    the JSON path, the plot path)."""
    truth_file, out, plot = tmp_path / "truth.npy", tmp_path / "bench.json", tmp_path / "b.png"
    np.save(truth_file, truth)
    result = run_cli(
        "bench", sim_file, "--truth", truth_file, "--strategy", "random", "--budget", "12",
        "--seed", "0,1", "--learner", "logreg", "--size", "32", "--json", out, "--plot", plot,
    )  # fmt: skip
    return result, out, plot


def test_a_run_that_never_meets_a_class_trains_without_it_and_says_so(run_cli, sim_file, tmp_path):
    """A class at one position only: random labels within a small budget never meet it; the
    model trains on the other two classes, and the run says which it lacks."""
    truth = np.zeros((24, 16), np.int64)
    truth[:, 8:] = 1
    truth[13, 7] = 2  # the only "none"
    result, out, _ = bench_random_12(run_cli, sim_file, tmp_path, truth)
    assert result.code == 0, result.err
    assert result.err.count("without a label of none") == 2, result.err
    runs = json.loads(out.read_text())["runs"]
    assert [r["seed"] for r in runs] == [0, 1]
    assert all(r["no_model"] is None and r["absent_classes"] == ["none"] for r in runs)
    assert all(r["labels"] == 12 and r["models"] >= 1 and r["accuracy"] > 0.5 for r in runs)


def test_a_run_that_meets_one_class_only_is_reported_and_the_bench_goes_on(
    run_cli, sim_file, tmp_path
):
    """Two classes at one position each: random labels within a small budget meet only the
    third, so no model can train; the run says so, its accuracy is null, the others run."""
    truth = np.zeros((24, 16), np.int64)
    truth[13, 7], truth[3, 2] = 1, 2  # the only "vertical" and "none"
    result, out, plot = bench_random_12(run_cli, sim_file, tmp_path, truth)
    assert result.code == 0, result.err
    assert result.err.count("no model within the budget") == 2, result.err
    assert "vertical, none have no label" in result.err
    assert "2 of 2 runs: no model" in result.out
    runs = json.loads(out.read_text())["runs"]
    assert [r["seed"] for r in runs] == [0, 1]
    assert all(r["accuracy"] is None and "none have no label" in r["no_model"] for r in runs)
    assert all(r["labels"] == 12 and r["models"] == 0 for r in runs)
    assert plot.exists()


def test_simulated_labeller_answers_from_the_truth_and_errs_at_the_noise_rate(sim_file):
    from ghosttui.loop.bench import SimulatedLabeller
    from ghosttui.loop.controller import Current

    truth = sim_truth(sim_file)
    classes = ["horizontal", "vertical", "none"]
    positions = [(rx, ry) for rx in range(truth.shape[0]) for ry in range(truth.shape[1])]

    def wrong(noise: float) -> float:
        labeller = SimulatedLabeller(truth, classes, noise, seed=3)
        answers = [labeller.answer(Current(rx, ry, "grid", 1, None)) for rx, ry in positions]
        return float(
            np.mean([a != classes[truth[p]] for a, p in zip(answers, positions, strict=True)])
        )

    assert wrong(0.0) == 0.0
    assert abs(wrong(0.3) - 0.3) < 0.05  # 384 answers: about 30% wrong


def test_bench_learner_must_be_known(run_cli, sim_file):
    assert_one_line_error(run_cli("bench", sim_file, "--learner", "magic"), "unknown learner")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--strategy", "magic"], "unknown strategy"),
        (["--budget", "50", "--grid-step", "2"], "fits"),
        (["--label-noise", "1.5"], "--label-noise"),
        (["--budget", "ten"], "--budget"),
    ],
)
def test_bench_bad_options(run_cli, sim_file, args, fragment):
    assert_one_line_error(run_cli("bench", sim_file, *args), fragment)


def test_bench_bad_truth(run_cli, sim_file, tmp_path):
    wrong_shape = tmp_path / "shape.npy"
    np.save(wrong_shape, np.zeros((3, 3), np.int8))
    assert_one_line_error(run_cli("bench", sim_file, "--truth", wrong_shape), "truth map is (3, 3)")
    outside = tmp_path / "outside.npy"
    np.save(outside, np.full((24, 16), 5, np.int8))
    assert_one_line_error(run_cli("bench", sim_file, "--truth", outside), "outside 0..2")
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros((24, 16, 64, 64), np.uint16))
    assert_one_line_error(run_cli("bench", plain), "no /truth")
