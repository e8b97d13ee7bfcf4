"""`nalu-keras bench`: the Madsen & Johansen benchmark runner (experiments.benchmark)."""

import csv
import json
import math
import os
import types

import keras
import pytest

from nalu_keras.lab import cli
from nalu_keras.lab.experiments import benchmark

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="the vectorized trainer needs JAX")

TINY = ["--units", "NAU,NMU", "--ops", "add", "--seeds", "3", "--steps", "300", "--log-every", "100"]
TINY_CONFIG = dict(units=("NAU", "NMU"), ops=("add",), seeds=3, steps=300, log_every=100)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny sweep, uninterrupted, through the CLI."""
    out = str(tmp_path_factory.mktemp("bench_cli"))
    status = cli.main(["bench", *TINY, "--out", out])
    return status, out


def test_cli_tiny_sweep_writes_everything(tiny_run, capsys):
    status, out = tiny_run
    assert status == 0
    for name in ("bench_runs.csv", "bench_curves.csv", "bench_table.md", "bench_success.png",
                 "bench_curves.png", "bench_done.json", "bench_thresholds.json"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    runs = _rows(os.path.join(out, "bench_runs.csv"))
    assert len(runs) == 2 * 3
    assert {(r["unit"], r["op"], r["range"]) for r in runs} == {
        ("NAU", "add", "U[1,2]:U[2,6]"), ("NMU", "add", "U[1,2]:U[2,6]")}
    assert sorted(int(r["seed"]) for r in runs) == [0, 0, 1, 1, 2, 2]
    for r in runs:
        assert float(r["threshold"]) == pytest.approx(1.6e-5, rel=0.05)
        assert r["success"] in ("True", "False")
        assert 0.0 <= float(r["sparsity_error"]) <= 0.5 + 1e-6
        # the protocol measures sparsity at the selected step
        assert r["sparsity_step"] == r["selected_step"]
    curves = _rows(os.path.join(out, "bench_curves.csv"))
    assert len(curves) == 2 * 3 * 4  # steps 0, 100, 200, 300
    table = open(os.path.join(out, "bench_table.md"), encoding="utf-8").read()
    assert "success % (95 % CI)" in table and "| NMU |" in table
    done = json.load(open(os.path.join(out, "bench_done.json"), encoding="utf-8"))
    assert len(done["done"]) == 2


def test_resume_after_interruption_matches_uninterrupted(tiny_run, tmp_path):
    _, reference = tiny_run
    out = str(tmp_path / "resumed")
    config = benchmark.BenchConfig(**TINY_CONFIG)

    class Stop(Exception):
        pass

    def stop(*key):
        raise Stop(key)

    with pytest.raises(Stop):
        benchmark.run(config, out, after_config=stop)
    assert len(_rows(os.path.join(out, "bench_runs.csv"))) == 3
    # Simulate a crash while the second configuration was being appended:
    # some of its rows, the last one truncated, and no entry in bench_done.json.
    partial = _rows(os.path.join(reference, "bench_runs.csv"))[3:5]
    with open(os.path.join(out, "bench_runs.csv"), "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=benchmark.RUN_COLUMNS)
        writer.writerows(partial)
        handle.write('NMU,add,"U[1,2]:U[2,6]",U[1')
    curves = _rows(os.path.join(reference, "bench_curves.csv"))[12:20]
    with open(os.path.join(out, "bench_curves.csv"), "a", newline="", encoding="utf-8") as handle:
        csv.DictWriter(handle, fieldnames=benchmark.CURVE_COLUMNS).writerows(curves)

    computed = benchmark.run(config, out)
    assert computed == [("NMU", "add", "U[1,2]:U[2,6]")]
    for name, unique in (("bench_runs.csv", ("unit", "op", "range", "seed")),
                         ("bench_curves.csv", ("unit", "op", "range", "seed", "step"))):
        got, want = _rows(os.path.join(out, name)), _rows(os.path.join(reference, name))
        assert len(got) == len(want)
        assert len({tuple(r[c] for c in unique) for r in got}) == len(got)  # no duplicates
        assert got == want  # same rows as the uninterrupted run

    # a third run has nothing to do and changes nothing
    before = open(os.path.join(out, "bench_runs.csv"), encoding="utf-8").read()
    assert benchmark.run(config, out) == []
    assert open(os.path.join(out, "bench_runs.csv"), encoding="utf-8").read() == before
    text, paths = benchmark.write_report(config, out)
    assert "NAU" in text and all(os.path.exists(p) for p in paths)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--units", "NAU,Foo"], "unknown unit"),
        (["--ops", "add,pow"], "unknown op"),
        (["--schedule", "slow"], "unknown schedule"),
        (["--ranges", "U[1,2]"], "bad range pair"),
        (["--ranges", "U[2,1]:U[2,6]"], "bad range pair"),
        (["--seeds", "0"], "seeds"),
        (["--seeds=-3"], "seeds"),
        (["--steps", "0"], "steps"),
    ],
)
def test_bad_arguments_exit_2(extra, message, tmp_path, capsys):
    try:
        status = cli.main(["bench", "--out", str(tmp_path), *extra])
    except SystemExit as stop:  # refused by the argument parser (usage line + error line)
        status = stop.code
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert err.splitlines()[-1].startswith("nalu-keras")
    assert message in err
    assert not os.path.exists(tmp_path / "bench_runs.csv")


def test_rerun_with_other_settings_is_an_error(tiny_run, capsys):
    _, out = tiny_run
    status = cli.main(["bench", *TINY[:-4], "--steps", "200", "--log-every", "100", "--out", out])
    assert status == 2
    assert "other settings" in capsys.readouterr().err


def test_success_logic_on_hand_made_result():
    threshold = 1e-3
    steps = [0, 100, 200, 300]
    curves = {
        # solved at 200, selected at 300 (lowest validation MSE): success
        0: ([5.0, 1.0, 1e-4, 1e-5], [9.0, 2.0, 5e-4, 1e-4]),
        # below the threshold at 100 only, but selected at 300: solved-at 100, failure
        1: ([5.0, 1.0, 0.5, 0.1], [9.0, 1e-4, 2.0, 3.0]),
        # all-NaN validation: first step selected; never below: failure
        2: ([math.nan] * 4, [math.nan, 1.0, math.nan, 2.0]),
    }
    rows = [
        {"seed": seed, "step": step, "train_loss": 0.0, "interp_mse": i, "extrap_mse": e}
        for seed, (interp, extrap) in curves.items()
        for step, i, e in zip(steps, interp, extrap)
    ]
    result = types.SimpleNamespace(seeds=(0, 1, 2), rows=rows[::-1])  # order must not matter
    scores = benchmark.score_result(result, threshold)
    assert scores[0]["success"] is True
    assert scores[0]["selected_step"] == 300 and scores[0]["solved_at"] == 200
    assert scores[0]["extrapolation_mse"] == pytest.approx(1e-4)
    assert scores[1]["success"] is False and scores[1]["solved_at"] == 100
    assert scores[1]["selected_step"] == 300
    assert scores[2]["success"] is False and scores[2]["solved_at"] is None
    assert scores[2]["selected_step"] == 0
    assert all(math.isnan(s["sparsity_error"]) and s["sparsity_step"] == 300 for s in scores.values())
    # no finite threshold: never a success
    no_threshold = benchmark.score_result(result, math.nan)
    assert not any(s["success"] for s in no_threshold.values())
    # summarize_runs over such rows: 1 of 3 successes
    runs = [dict(unit="NMU", op="mul", range="r", **s) for s in scores.values()]
    (summary,) = benchmark.summarize_runs(runs)
    assert summary["successes"] == 1 and summary["solved_at_median"] == 200


def test_config_names_ranges_and_schedules():
    config = benchmark.BenchConfig(units=("nac*sigma", "NAC•", "linear"), ops=("mul",), ranges="madsen")
    assert config.units == ("NAC•,σ", "NAC•", "Linear")
    assert len(config.ranges) == 7 and "U[-2,2]:U[-6,-2]∪U[2,6]" in config.ranges
    assert cli._unit_list("NAU,NAC•,σ,NMU") == ("NAU", "NAC•,σ", "NMU")
    fast = benchmark.BenchConfig()
    assert fast.total_steps == 50_000 and fast.seeds == 100
    assert fast.warmup("NMU") == (10.0, 20_000, 35_000) and fast.warmup("NAU") == (0.01, 5_000, 50_000)
    assert fast.warmup("NALU") is None
    paper = benchmark.BenchConfig(schedule="paper")
    assert paper.total_steps == 5_000_000 and paper.warmup("NMU") == (10.0, 1_000_000, 2_000_000)
    assert benchmark.BenchConfig(steps=5_000).warmup("NMU") == (10.0, 2_000, 3_500)
    assert benchmark.BenchConfig(schedule="paper", steps=5_000).warmup("NMU") == (10.0, 1_000_000, 2_000_000)
    for unit in benchmark.UNITS:  # every unit builds a 100 -> 2 -> 1 model
        model = benchmark.model_builder(unit, fast)()
        assert model.output_shape == (None, 1)


# --- the Primer's single-module suite -------------------------------------------


def test_primer_suite_config_task_and_model():
    config = benchmark.BenchConfig(suite="primer", units=("NMU", "NPU", "Linear"), ops=("mul", "div"))
    assert (config.input_size, config.schedule, config.total_steps) == (2, "primer", 50_000)
    assert config.warmup("NMU") == (10.0, 20_000, 35_000) and config.warmup("NAU") == (0.01, 20_000, 35_000)
    assert config.learning_rate_for("NPU") == 5e-3 and config.learning_rate_for("NMU") == 1e-3
    task = config.task("mul")
    assert task.subsets == (slice(0, 1), slice(1, 2))
    model = benchmark.model_builder("NMU", config)()
    assert len(model.layers) == 1 and model.input_shape == (None, 2) and model.output_shape == (None, 1)
    wide = benchmark.BenchConfig(suite="primer", input_size=100, task_seed=4)
    a, b = wide.task("add").subsets
    assert (a.stop - a.start, b.start) == (1, a.stop)
    assert benchmark.BenchConfig(suite="primer", input_size=100, task_seed=5).task("add").subsets != (a, b) \
        or benchmark.BenchConfig(suite="primer", input_size=100, task_seed=6).task("add").subsets != (a, b)
    assert len(benchmark.expand_ranges("primer")) == 9
    # the madsen suite keeps its settings keys (older output directories stay resumable)
    assert "suite" not in benchmark.BenchConfig().settings()
    assert benchmark.BenchConfig(suite="primer").settings()["suite"] == "primer"
    with pytest.raises(ValueError, match="primer suite has the ops"):
        benchmark.BenchConfig(suite="primer", ops=("squared",))
    with pytest.raises(ValueError, match="unknown suite"):
        benchmark.BenchConfig(suite="other")


def test_primer_nmu_learns_the_product_on_every_seed(tmp_path):
    out = str(tmp_path / "primer")
    status = cli.main(["bench", "--suite", "primer", "--units", "NMU", "--ops", "mul", "--seeds", "4",
                       "--steps", "2000", "--log-every", "250", "--out", out])
    assert status == 0
    runs = _rows(os.path.join(out, "bench_runs.csv"))
    assert len(runs) == 4 and all(r["success"] == "True" for r in runs)
    # single-module threshold of × on U[2,6] with two inputs: about 7e-8
    assert 5e-8 < float(runs[0]["threshold"]) < 1e-7
    assert "Primer single-module benchmark" in open(os.path.join(out, "bench_table.md"), encoding="utf-8").read()


def test_workers_give_the_rows_of_one_process(tiny_run, tmp_path):
    _, reference = tiny_run
    out = str(tmp_path / "two")
    assert cli.main(["bench", *TINY, "--workers", "2", "--out", out]) == 0
    # bit for bit: the workers share out the same seed groups one process runs
    for name in ("bench_runs.csv", "bench_curves.csv"):
        mine, theirs = (_rows(os.path.join(d, name)) for d in (out, reference))
        assert mine == theirs, name


def test_success_matrix_has_one_column_per_range_pair():
    config = benchmark.BenchConfig(units=("NAU", "NMU"), ops=("add",), ranges="U[1,2]:U[2,6];U[0,1]:U[1,5]".split(";"))
    summaries = [
        {"unit": "NAU", "op": "add", "range": "U[1,2]:U[2,6]", "success_rate": 1.0},
        {"unit": "NAU", "op": "add", "range": "U[0,1]:U[1,5]", "success_rate": 0.25},
        {"unit": "NMU", "op": "add", "range": "U[0,1]:U[1,5]", "success_rate": 0.0},
    ]
    headers, body = benchmark.success_matrix(summaries, config)
    assert headers == ["unit", "op", "U[1,2] → U[2,6]", "U[0,1] → U[1,5]"]
    assert body == [["NAU", "a+b", "100", "25"], ["NMU", "a+b", "—", "0"]]
