"""The benchmark beside the published runs: matched-step comparison in the
table and figure, the reference's NAC initialization, the paper schedule's
absolute ramps."""

import csv

import keras
import numpy as np
import pytest

from nalu_keras.initializers import NACVarianceUniform, nac_uniform_limit, nac_weight_variance
from nalu_keras.lab.experiments import benchmark


def _summary(unit, op, successes, n=100, pair="U[1,2]:U[2,6]", reached=None):
    return {"unit": unit, "op": op, "range": pair, "n": n, "successes": successes,
            "reached": successes if reached is None else reached,
            "success_rate": successes / n, "success_low": 0.0, "success_high": 1.0,
            "solved_at_median": 1e4, "sparsity_mean": 0.1, "sparsity_n": successes}


def test_comparison_counts_the_seeds_under_the_threshold_by_the_same_step():
    from nalu_keras.lab.published import published_reached_by, published_solved_by

    config = benchmark.BenchConfig(units=("NMU",), ops=("mul",), schedule="paper", steps=2_000_000)
    c = benchmark.published_comparison(_summary("NMU", "mul", 50), config)
    assert c["rule"] == "reached" and c["ours"] == (50, 100)
    assert c["published"] == published_reached_by("NMU", "mul", 2_000_000)
    assert c["published_full"] == (98, 100)
    assert c["p_value"] < 1e-6 and not c["agree"]
    # reached counts the first passage whatever the final selection says
    assert published_reached_by("Linear", "sub", 5_000_000)[0] >= published_solved_by(
        "Linear", "sub", 5_000_000)[0]
    same = benchmark.published_comparison(_summary("NMU", "mul", 0, reached=c["published"][0]), config)
    assert same["p_value"] == pytest.approx(1.0) and same["agree"]


@pytest.mark.parametrize("config, summary", [
    (benchmark.BenchConfig(units=("NPU",), ops=("div",)), _summary("NPU", "div", 3)),
    (benchmark.BenchConfig(ranges="U[0,1]:U[1,5]"), _summary("NAU", "add", 3, pair="U[0,1]:U[1,5]")),
    (benchmark.BenchConfig(input_size=10), _summary("NAU", "add", 3)),
    (benchmark.BenchConfig(suite="primer", ops=("add",)), _summary("NAU", "add", 3)),
])
def test_no_comparison_where_no_published_cell_exists(config, summary):
    assert benchmark.published_comparison(summary, config) is None


def test_table_shows_published_counts_and_the_verdict():
    config = benchmark.BenchConfig(units=("NAU", "Linear", "NPU"), ops=("sub",))
    summaries = [_summary("NAU", "sub", 100), _summary("Linear", "sub", 100), _summary("NPU", "sub", 0)]
    headers, body = benchmark.table(summaries, config)
    assert headers[-5:] == ["reached by 5e4", "published reached by 5e4", "Fisher p", "verdict",
                            "published success @ 5e6"]
    nau, linear, npu = body
    assert nau[-5:-3] == ["100/100", "96/100"] and nau[-2:] == ["agrees", "100/100"]
    assert linear[-5:-3] == ["100/100", "1/100"] and linear[-2:] == ["differs", "7/100"]
    assert npu[-5:] == ["0"] + ["—"] * 4
    assert benchmark.table(summaries)[0][-1] == "sparsity error mean"  # without config: as before


def test_report_has_the_comparison_and_a_readable_figure(tmp_path):
    config = benchmark.BenchConfig(units=("NAU", "Linear"), ops=("add", "sub"), seeds=4, steps=50_000)
    with open(tmp_path / benchmark.RUNS_FILE, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=benchmark.RUN_COLUMNS)
        writer.writeheader()
        for unit, op, pair in config.configurations():
            for seed in range(4):
                writer.writerow({c: "" for c in benchmark.RUN_COLUMNS} | {
                    "unit": unit, "op": op, "range": pair, "seed": seed, "steps": 50_000,
                    "threshold": 1e-5, "selected_step": 50_000, "extrapolation_mse": 1e-9,
                    "success": "True", "solved_at": 10_000, "sparsity_error": 1e-3})
    text, paths = benchmark.write_report(config, str(tmp_path))
    assert "published reached by 5e4" in text and "differs" in text
    md = open(tmp_path / benchmark.TABLE_FILE, encoding="utf-8").read()
    assert "Fisher" in md and "Madsen & Johansen" in md
    import matplotlib.image

    width = matplotlib.image.imread(tmp_path / benchmark.SUCCESS_PNG).shape[1]
    assert width < 1600  # a panel per operation, not one strip of bars


def test_nac_initialization_has_the_reference_variance():
    assert nac_uniform_limit(100, 2) == pytest.approx(0.5039, abs=1e-4)
    assert nac_uniform_limit(2, 1) == pytest.approx(9.4714, abs=1e-4)  # fan clamped to 5
    for fan_in, fan_out in ((100, 2), (2, 1), (10, 10)):
        r = nac_uniform_limit(fan_in, fan_out)
        assert nac_weight_variance(r) == pytest.approx(2 / max(fan_in + fan_out, 5), rel=1e-9)
    # the closed form against sampling
    rng = np.random.default_rng(0)
    u, v = rng.uniform(-2, 2, (2, 400_000))
    assert np.var(np.tanh(u) / (1 + np.exp(-v))) == pytest.approx(nac_weight_variance(2.0), rel=0.01)
    keras.utils.set_random_seed(5)
    w = keras.ops.convert_to_numpy(NACVarianceUniform()((100, 2)))
    assert 0.49 < np.abs(w).max() <= nac_uniform_limit(100, 2)
    keras.utils.set_random_seed(5)
    assert np.array_equal(w, keras.ops.convert_to_numpy(NACVarianceUniform()((100, 2))))
    again = NACVarianceUniform.from_config(NACVarianceUniform(min_fan=3, gain=1).get_config())
    assert (again.min_fan, again.gain) == (3, 1)
    with pytest.raises(ValueError, match="cannot reach"):
        nac_uniform_limit(1, 1, min_fan=1, gain=2)
    with pytest.raises(ValueError, match="min_fan"):
        NACVarianceUniform(min_fan=0)


def test_paper_schedule_keeps_the_reference_ramp_at_every_length():
    short = benchmark.BenchConfig(schedule="paper", steps=2_000_000)
    assert short.warmup("NMU") == (10.0, 1_000_000, 2_000_000)
    assert short.warmup("NAU") == (0.01, 5_000, 50_000)
    fast = benchmark.BenchConfig(schedule="fast", steps=5_000)
    assert fast.warmup("NMU") == (10.0, 2_000, 3_500)  # the compressed schedule scales


def test_selection_skips_step_0_of_a_full_length_run_as_the_reference():
    steps = list(range(0, 5_000_001, 1_000))
    interp = [0.0] + [1.0] * 5000
    interp[3000] = 0.5
    extrap = [1.0] * 5001
    assert benchmark.score_seed(steps, interp, extrap, 1e-5)["selected_step"] == 3_000_000
    # a short run keeps every logged step
    assert benchmark.score_seed(steps[:10], interp[:10], extrap[:10], 1e-5)["selected_step"] == 0
