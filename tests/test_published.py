"""The shipped copy of Madsen & Johansen's (ICLR 2020) per-seed Table 1 results
and the comparison helpers of `nalu_keras.lab.published`."""

import collections
import csv
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest

from nalu_keras.lab import published
from nalu_keras.lab.published import (
    FULL_STEPS,
    OPS,
    ROWS,
    compare_success,
    load_published,
    published_row,
    published_runs,
    published_solved_at_median,
    published_solved_by,
    published_success,
    rebuild_published,
)

REFERENCE = "/work/shared/reference/published"
ORIGINAL = os.path.join(REFERENCE, "sft-last.csv")
SHORT = os.path.join(REFERENCE, "sft-short.csv")
needs_original = pytest.mark.skipif(not os.path.exists(ORIGINAL),
                                    reason="the original sft-last.csv is not available")
needs_short = pytest.mark.skipif(not os.path.exists(SHORT),
                                 reason="the original sft-short.csv is not available")

DATA_DIR = os.path.join(os.path.dirname(published.__file__), "data", "published")
SHIPPED = os.path.join(DATA_DIR, "madsen2020_sft_last.csv")


# ---------------------------------------------------------------- the data


def test_loads_offline_from_the_package(monkeypatch):
    # No network is involved: the file is read through importlib.resources.
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("load_published tried to use the network")

    monkeypatch.setattr(socket, "socket", no_network)
    load_published.cache_clear()
    published._by_cell.cache_clear()
    runs = load_published()
    assert len(runs) == 6000
    assert load_published() is runs  # cached


def test_exactly_100_seeds_per_cell():
    runs = load_published()
    counts = collections.Counter((run.row, run.op) for run in runs)
    assert set(counts) == {(row, op) for row in ROWS for op in OPS}
    assert set(counts.values()) == {100}
    for row in ROWS:
        for op in OPS:
            assert [run.seed for run in published_runs(row, op)] == list(range(100))


def test_runs_are_typed_and_consistent():
    runs = load_published()
    run = runs[0]
    assert isinstance(run.seed, int) and isinstance(run.solved, bool)
    assert isinstance(run.sparsity_error, float) and isinstance(run.threshold, float)
    assert run._asdict()["row"] == "Linear"
    assert sum(run.solved for run in runs) == 1364
    for run in runs:
        if run.solved:
            assert run.solved_at is not None
        if run.solved_at is not None:
            assert run.solved_at % 1000 == 0 and 0 <= run.solved_at <= FULL_STEPS
        assert run.selected_step % 1000 == 0 and 0 <= run.selected_step <= FULL_STEPS
        assert 1 <= run.size <= 5001
        assert run.threshold > 0
    # one threshold per operation
    thresholds = collections.defaultdict(set)
    for run in runs:
        thresholds[run.op].add(run.threshold)
    assert all(len(values) == 1 for values in thresholds.values())
    # the runs that stopped early are all NALU ones
    short_runs = [run for run in runs if run.size < 5001]
    assert len(short_runs) == 27 and {run.row for run in short_runs} == {"NALU"}


def test_notice_is_shipped_beside_the_data():
    with open(os.path.join(DATA_DIR, "NOTICE.md"), encoding="utf-8") as handle:
        notice = handle.read()
    assert "Copyright (c) 2019 Andreas Madsen and Alexander Rosenberg Johansen" in notice
    assert "MIT License" in notice and "AndreasMadsen/stable-nalu" in notice
    assert "Andreas Madsen" in published.__doc__ and "MIT" in published.__doc__


def test_pyproject_ships_the_data():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as handle:
        text = handle.read()
    assert "[tool.setuptools.package-data]" in text
    assert '"nalu_keras.lab.data" = ["published/*.csv", "published/*.md"]' in text


def test_import_is_light():
    code = ("import sys, importlib.util, os\n"
            "spec = importlib.util.spec_from_file_location('p', sys.argv[1])\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "print('scipy' in sys.modules, 'keras' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, published.__file__],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


# ---------------------------------------------------------------- the counts


def test_nmu_mul_solved_by():
    assert published_solved_by("NMU", "mul", 50_000) == (0, 100)
    assert published_solved_by("NMU", "mul", 2_000_000) == (92, 100)
    assert published_solved_by("NMU", "mul", 5_000_000) == (98, 100)
    assert published_success("NMU", "mul") == (98, 100)


def test_nau_add():
    assert published_success("NAU", "add") == (100, 100)
    assert published_solved_by("NAU", "add", 5e6) == (100, 100)
    assert published_solved_at_median("NAU", "add") == 18_000


def test_solved_by_full_length_equals_success_everywhere():
    for row in ROWS:
        for op in OPS:
            full = published_success(row, op)
            assert published_solved_by(row, op, FULL_STEPS) == full
            assert published_solved_by(row, op, 10 * FULL_STEPS) == full
            shares = [published_solved_by(row, op, n)[0] for n in (1000, 5e4, 2e5, 2e6, 5e6)]
            assert shares == sorted(shares)


@needs_short
def test_medians_and_rates_match_the_published_summary():
    with open(SHORT, encoding="utf-8", newline="") as handle:
        summary = {(record["model"], record["operation"]): record
                   for record in csv.DictReader(handle)}
    assert len(summary) == 60
    checked = 0
    for (model, operation), record in summary.items():
        row = published._MODEL_TO_ROW[model]
        op = published._OPERATION_TO_OP[operation]
        median = published_solved_at_median(row, op)
        if record["converged.at.median"] == "NA":
            assert median is None, (row, op)
        else:
            assert median == float(record["converged.at.median"]), (row, op)
        successes, trials = published_success(row, op)
        assert successes / trials == pytest.approx(float(record["success.rate.mean"]),
                                                   abs=1e-12), (row, op)
        checked += 1
    assert checked == 60
    # a few cells by value
    assert published_solved_at_median("NMU", "mul") == 1_434_500
    assert published_solved_at_median("NAC+", "sub") == 9_000
    assert published_solved_at_median("NMU", "div") is None


# ---------------------------------------------------------------- compare


def test_compare_identical_counts():
    result = compare_success(92, 100, "NMU", "mul", 2_000_000)
    assert result["p_value"] == pytest.approx(1.0)
    assert result["agree"] is True
    assert result["ours"] == (92, 100) and result["ours_share"] == 0.92
    assert result["published"] == (92, 100) and result["published_share"] == 0.92
    assert result["published_full"] == (98, 100)
    assert result["published_full_share"] == 0.98
    assert result["steps"] == 2_000_000 and result["alpha"] == 0.01
    assert (result["row"], result["op"]) == ("NMU", "mul")


def test_compare_opposite_counts():
    result = compare_success(0, 100, "NAU", "add", FULL_STEPS)
    assert result["published"] == (100, 100)
    assert result["p_value"] < 1e-50
    assert result["agree"] is False


def test_compare_uses_the_published_share_at_the_same_steps():
    # NMU × is 0/100 by 5·10⁴: our 0/10 agrees there, not at 5·10⁶
    early = compare_success(0, 10, "NMU", "mul", 50_000)
    assert early["published"] == (0, 100) and early["p_value"] == pytest.approx(1.0)
    late = compare_success(0, 10, "NMU", "mul", 5_000_000)
    assert late["published"] == (98, 100) and not late["agree"]


def test_compare_alpha_and_numpy_counts():
    result = compare_success(np.int64(5), np.int64(10), "NMU", "sub", 5e6, alpha=0.5)
    assert result["alpha"] == 0.5
    assert result["agree"] == (result["p_value"] >= 0.5)
    assert compare_success(5.0, 10.0, "NMU", "sub", 5_000_000)["ours"] == (5, 10)


@pytest.mark.parametrize("args, message", [
    ((1, 10, "NPU", "add", 1000), "unknown published row"),
    ((1, 10, "NAU", "plus", 1000), "unknown operation"),
    ((-1, 10, "NAU", "add", 1000), "our_successes"),
    ((1, -10, "NAU", "add", 1000), "our_trials"),
    ((1.5, 10, "NAU", "add", 1000), "our_successes"),
    ((1, 10.5, "NAU", "add", 1000), "our_trials"),
    ((True, 10, "NAU", "add", 1000), "our_successes"),
    ((float("nan"), 10, "NAU", "add", 1000), "our_successes"),
    (("3", 10, "NAU", "add", 1000), "our_successes"),
    ((11, 10, "NAU", "add", 1000), "must not exceed"),
    ((0, 0, "NAU", "add", 1000), "at least 1"),
    ((1, 10, "NAU", "add", 0), "steps"),
    ((1, 10, "NAU", "add", -5), "steps"),
    ((1, 10, "NAU", "add", 10.5), "steps"),
])
def test_compare_errors(args, message):
    with pytest.raises(ValueError, match=message):
        compare_success(*args)


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 2, True, "0.05"])
def test_compare_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        compare_success(1, 10, "NAU", "add", 1000, alpha=alpha)


def test_count_errors():
    with pytest.raises(ValueError, match="unknown published row"):
        published_success("nau", "add")
    with pytest.raises(ValueError, match="unknown operation"):
        published_solved_by("NAU", "+", 1000)
    for steps in (0, -1, 0.5, float("inf"), None):
        with pytest.raises(ValueError, match="steps"):
            published_solved_by("NAU", "add", steps)


# ---------------------------------------------------------------- unit names


def test_published_row():
    from nalu_keras.lab.experiments.benchmark import UNITS

    for unit in UNITS:
        expected = None if unit in ("NPU", "RealNPU") else unit
        assert published_row(unit) == expected
        if expected is not None:
            assert expected in ROWS
    for row in ROWS:
        assert published_row(row) == row
    with pytest.raises(ValueError, match="unknown unit"):
        published_row("NAC")


# ---------------------------------------------------------------- rebuild


@needs_original
def test_shipped_file_reproduces_from_the_original(tmp_path):
    output = tmp_path / "rebuilt.csv"
    assert rebuild_published(ORIGINAL, output) == str(output)
    with open(SHIPPED, "rb") as shipped, open(output, "rb") as rebuilt:
        assert rebuilt.read() == shipped.read()


@needs_original
def test_rebuild_command_line(tmp_path):
    output = tmp_path / "cli.csv"
    result = subprocess.run(
        [sys.executable, "-m", "nalu_keras.lab.published", "--rebuild", ORIGINAL,
         "--output", str(output)],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    with open(SHIPPED, "rb") as shipped:
        assert output.read_bytes() == shipped.read()


@needs_original
def test_shipped_values_match_the_original():
    with open(ORIGINAL, encoding="utf-8", newline="") as handle:
        original = {(published._MODEL_TO_ROW[r["model"]], published._OPERATION_TO_OP[r["operation"]],
                     int(r["seed"])): r for r in csv.DictReader(handle)}
    assert len(original) == 6000
    for run in load_published():
        record = original[run.row, run.op, run.seed]
        assert run.solved == (record["solved"] == "TRUE")
        na = record["extrapolation.step.solved"] == "NA"
        assert run.solved_at == (None if na else int(record["extrapolation.step.solved"]))
        assert run.sparsity_error == float(record["sparse.error.max"])
        assert run.selected_step == (int(record["best.model.step"]) - 1) * 1000
        assert run.threshold == float(record["threshold"])
        assert run.size == int(record["size"])
    # the median of an independent computation from the original, one cell
    steps = [int(r["extrapolation.step.solved"]) for key, r in original.items()
             if key[:2] == ("NAU", "add") and r["solved"] == "TRUE"]
    assert statistics.median(steps) == 18_000


def test_rebuild_rejects_a_bad_source(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("model,operation\nNAU,$\\bm{+}$\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing columns"):
        rebuild_published(bad, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_reached_by_counts_every_first_passage():
    from nalu_keras.lab.published import published_reached_by, published_runs

    for row, op in (("Linear", "sub"), ("NAC•,σ", "root"), ("NMU", "mul")):
        runs = published_runs(row, op)
        for steps in (50_000, 2_000_000, 5_000_000):
            want = sum(r.solved_at is not None and r.solved_at <= steps for r in runs)
            assert published_reached_by(row, op, steps) == (want, 100)
    assert published_reached_by("Linear", "add", 100_000) == (99, 100)
    with pytest.raises(ValueError, match="rule"):
        compare_success(1, 100, "NAU", "add", 1000, rule="first")
