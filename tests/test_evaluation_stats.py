"""Benchmark statistics in nalu_keras.lab.evaluation: success thresholds, model
selection, success/solved-at, Wilson intervals, gamma/beta summaries.

Pure numpy/scipy; the whole file runs in a few seconds.
"""

import json
import math

import numpy as np
import pytest
from scipy import optimize, stats

from nalu_keras.lab import evaluation
from nalu_keras.lab.evaluation import (
    Selection,
    clear_threshold_cache,
    is_success,
    select_best,
    solved_at,
    solved_at_summary,
    sparsity_summary,
    success_threshold,
    summarize_runs,
    wilson_interval,
)
from nalu_keras.lab.tasks import ArithmeticTask, ValueRange

SAMPLES = 1_000_000  # as in the published estimate; one pass takes ~1.5 s


def _threshold(op, subset_size=None, **kwargs):
    return success_threshold(
        ArithmeticTask(op), "U[2,6]", samples=SAMPLES, subset_size=subset_size,
        return_stderr=True, **kwargs,
    )


def _within_mc_error(estimate, stderr, published, digits=3):
    """|estimate − published| within the rounding of the published value
    plus 3 standard errors of the difference of two independent estimates
    of the same size (theirs also used 1e6 samples)."""
    rounding = 0.5 * 10 ** (math.floor(math.log10(abs(published))) - (digits - 1))
    return abs(estimate - published) <= rounding + 3 * math.sqrt(2) * stderr


# --- success_threshold -------------------------------------------------------


@pytest.mark.parametrize(
    "op, published",
    [
        ("mul", 0.160),
        ("add", 1.48e-5),
        ("sub", 1.38e-8),
        ("div", 4.94e-12),
        ("squared", 0.159),
        ("root", 8.95e-9),
    ],
)
def test_26_element_subsets_reproduce_the_published_thresholds(op, published):
    estimate, stderr = _threshold(op, subset_size=26)
    assert _within_mc_error(estimate, stderr, published), (estimate, stderr, published)


@pytest.mark.parametrize(
    "op, expected, digits",
    [
        ("mul", 0.161, 3),
        ("add", 1.6e-5, 2),
        ("sub", 1.38e-8, 3),
        ("div", 5.8e-12, 2),
        ("squared", 0.160, 3),
        ("root", 1.01e-8, 3),
    ],
)
def test_25_element_subsets_of_the_real_data(op, expected, digits):
    estimate, stderr = _threshold(op)
    assert _within_mc_error(estimate, stderr, expected, digits), (estimate, expected)


@pytest.mark.parametrize("subset_size, overlap", [(26, 13), (25, 12)])
def test_add_and_sub_thresholds_match_their_closed_form(subset_size, overlap):
    # add: y_ε − y = 2ε (S_rest − S_overlap) with S_rest the 100 − (2s − o)
    # unused inputs; sub: 2ε (S_b_only − S_a_only), s − o inputs each.
    # For U[2,6]: mean 4, variance 16/12.
    eps, mean, var = 1e-5, 4.0, 16.0 / 12.0
    rest = 100 - (2 * subset_size - overlap)
    add_exact = 4 * eps**2 * (((rest - overlap) * mean) ** 2 + (rest + overlap) * var)
    sub_exact = 4 * eps**2 * (2 * (subset_size - overlap) * var)
    for op, exact in (("add", add_exact), ("sub", sub_exact)):
        estimate, stderr = _threshold(op, subset_size=subset_size)
        assert abs(estimate - exact) < 4 * stderr, (op, estimate, exact, stderr)
    assert add_exact == pytest.approx(1.4785e-5 if subset_size == 26 else 1.6039e-5, rel=1e-4)
    assert sub_exact == pytest.approx(1.3867e-8, rel=1e-4)


def _point_mass_task():
    # input 10, subsets of 3 overlapping in 1; with x ≡ 1: a = b = 3, sum 10,
    # so a' = b' = 3 + ε (10 − 2·3) = 3 + 4ε
    return ArithmeticTask("add", input_size=10, subset_ratio=0.3, overlap_ratio=0.34)


@pytest.mark.parametrize("perturb_output", [False, True])
def test_hand_computed_thresholds_on_an_almost_constant_input(perturb_output):
    eps = 1e-3
    near_one = ValueRange(((1.0, 1.0 + 1e-10),))
    z = 3.0 + 4.0 * eps
    if not perturb_output:
        y = {"add": 2 * z, "sub": 0.0, "mul": z * z, "div": 1.0, "squared": z * z, "root": math.sqrt(z)}
    else:
        u = (1 - eps) * z + eps
        y = {
            "add": (1 - eps) * 2 * z,
            "sub": 0.0,
            "mul": u * u,
            "div": 1.0,
            "squared": u * u,
            "root": z ** ((1 - eps) / 2) * z**eps,
        }
    exact = {"add": 6.0, "sub": 0.0, "mul": 9.0, "div": 1.0, "squared": 9.0, "root": math.sqrt(3.0)}
    base = _point_mass_task()
    for op in exact:
        task = ArithmeticTask(op, base.input_size, base.subset_ratio, base.overlap_ratio)
        got = success_threshold(task, near_one, epsilon=eps, samples=1000, perturb_output=perturb_output)
        expected = (y[op] - exact[op]) ** 2
        if expected == 0.0:
            assert got < 1e-20, op
        else:
            assert got == pytest.approx(expected, rel=1e-6), op


def test_threshold_does_not_depend_on_the_task_seed_and_uses_the_task_sizes():
    values = {
        success_threshold(ArithmeticTask("mul", seed=s), "U[2,6]", samples=20_000, seed=3)
        for s in range(4)
    }
    assert len(values) == 1
    # the default sizes are the task's: 25 elements, not 26
    assert success_threshold(ArithmeticTask("add"), "U[2,6]", samples=20_000, seed=3) == (
        success_threshold(ArithmeticTask("add"), "U[2,6]", samples=20_000, seed=3, subset_size=25)
    )
    smaller = success_threshold(
        ArithmeticTask("add", subset_ratio=0.1), "U[2,6]", samples=20_000, seed=3
    )
    assert smaller != success_threshold(ArithmeticTask("add"), "U[2,6]", samples=20_000, seed=3)


def test_threshold_on_a_union_range_and_undefined_ops():
    mixed = "[-6,-2]u[2,6]"
    assert success_threshold(ArithmeticTask("mul"), mixed, samples=20_000) > 0
    with pytest.raises(ValueError, match="not finite"):
        success_threshold(ArithmeticTask("root"), "U[-6,-2]", samples=20_000)
    with pytest.raises(ValueError, match="not finite"):
        success_threshold(ArithmeticTask("div"), "U[-6,-2]", samples=20_000, perturb_output=True)


def test_thresholds_are_computed_once_in_process_and_on_disk(tmp_path, monkeypatch):
    calls = []
    original = evaluation._simulate_thresholds

    def counting(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(evaluation, "_simulate_thresholds", counting)
    clear_threshold_cache()
    path = tmp_path / "sub" / "thresholds.json"
    kwargs = dict(samples=5000, seed=11, cache_path=path)
    first = success_threshold(ArithmeticTask("mul"), "U[2,6]", **kwargs)
    assert len(calls) == 1
    # the same pass serves the other ops and forms
    success_threshold(ArithmeticTask("add"), "U[2,6]", **kwargs)
    success_threshold(ArithmeticTask("div"), "U[2,6]", perturb_output=True, **kwargs)
    assert len(calls) == 1
    stored = json.loads(path.read_text())
    assert len(stored) == 12
    assert all(set(entry) == {"mse", "stderr"} for entry in stored.values())
    # a fresh process (empty memory cache) reads the file instead of simulating
    clear_threshold_cache()
    assert success_threshold(ArithmeticTask("mul"), "U[2,6]", **kwargs) == first
    assert len(calls) == 1
    # another key is computed and added to the same file
    success_threshold(ArithmeticTask("mul"), "U[2,6]", samples=5000, seed=12, cache_path=path)
    assert len(calls) == 2
    assert len(json.loads(path.read_text())) == 24
    # the seed is the Monte-Carlo stream: same seed, same value
    clear_threshold_cache()
    assert success_threshold(ArithmeticTask("mul"), "U[2,6]", samples=5000, seed=11) == first


def test_threshold_cache_file_must_be_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("not json")
    clear_threshold_cache()
    with pytest.raises(ValueError, match="bad.json.*cannot be read as JSON"):
        success_threshold(ArithmeticTask("add"), "U[2,6]", samples=100, cache_path=path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(task="add"), "ArithmeticTask"),
        (dict(epsilon=0.0), "epsilon"),
        (dict(epsilon=0.5), "epsilon"),
        (dict(epsilon="small"), "epsilon"),
        (dict(samples=1), "samples"),
        (dict(samples=10.0), "samples"),
        (dict(seed=-1), "seed"),
        (dict(subset_size=0), "subset_size"),
        (dict(subset_size=70), "do not fit"),
        (dict(value_range="U[2"), "Cannot parse"),
        (dict(cache_path=3), "cache_path"),
    ],
)
def test_threshold_validation(kwargs, message):
    arguments = dict(task=ArithmeticTask("add"), value_range="U[2,6]", samples=100)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        success_threshold(**arguments)


# --- select_best, is_success, solved_at ---------------------------------------


def test_select_best_picks_the_lowest_validation_mse():
    steps = [0, 1000, 2000, 3000]
    chosen = select_best(steps, [5.0, 0.1, 0.3, 0.2], [50.0, 1.0, 0.01, 0.02])
    assert chosen == Selection(1, 1000, 0.1, 1.0)
    assert isinstance(chosen.step, int)


def test_select_best_treats_nan_as_inf_and_ties_as_earliest():
    steps = [10, 20, 30, 40]
    assert select_best(steps, [np.nan, 0.5, 0.2, 0.2], [1, 2, 3, 4]).index == 2
    all_nan = select_best(steps, [np.nan] * 4, [1, 2, 3, 4])
    assert (all_nan.index, all_nan.step, all_nan.extrapolation_mse) == (0, 10, 1.0)
    assert math.isnan(all_nan.interpolation_mse)
    assert select_best(steps, [np.inf, np.nan, np.inf, np.nan], [1, 2, 3, 4]).index == 0


def test_select_best_window_uses_only_the_last_entries():
    steps = [1, 2, 3, 4, 5]
    interp = [0.0, 1.0, 3.0, 2.0, 4.0]
    assert select_best(steps, interp, interp).index == 0
    assert select_best(steps, interp, interp, window=3).index == 3
    assert select_best(steps, interp, interp, window=99).index == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (([], [], []), "empty"),
        (([1, 2], [1.0], [1.0, 2.0]), "interp_mse has 1"),
        (([1, 2], [1.0, 2.0], [1.0]), "extrap_mse has 1"),
        (([2, 1], [1.0, 2.0], [1.0, 2.0]), "strictly increasing"),
        (([1, 1], [1.0, 2.0], [1.0, 2.0]), "strictly increasing"),
        (([1, np.nan], [1.0, 2.0], [1.0, 2.0]), "finite"),
        (([[1, 2]], [[1.0, 2.0]], [[1.0, 2.0]]), "one-dimensional"),
        (([1, 2], ["a", "b"], [1.0, 2.0]), "sequence of numbers"),
    ],
)
def test_select_best_validation(args, message):
    with pytest.raises(ValueError, match=message):
        select_best(*args)
    with pytest.raises(ValueError, match="window"):
        select_best([1], [1.0], [1.0], window=0)


def test_is_success_is_strictly_below_and_nan_fails():
    assert is_success(1e-6, 1.48e-5) is True
    assert is_success(1.48e-5, 1.48e-5) is False
    assert is_success(1.0, 1.48e-5) is False
    assert is_success(math.nan, 1.0) is False
    assert is_success(math.inf, 1.0) is False
    assert is_success(np.float32(0.1), 0.16) is True
    for bad in (math.nan, -1.0, "0.1", True):
        with pytest.raises(ValueError, match="threshold"):
            is_success(0.1, bad)
    with pytest.raises(ValueError, match="extrap_mse_at_selected"):
        is_success(None, 0.1)


def test_solved_at_is_the_first_step_below_the_threshold():
    steps = [0, 1000, 2000, 3000, 4000]
    extrap = [1.0, np.nan, 0.05, 0.5, 0.01]
    assert solved_at(steps, extrap, 0.1) == 2000
    assert isinstance(solved_at(steps, extrap, 0.1), int)
    assert solved_at(steps, extrap, 0.02) == 4000
    assert solved_at(steps, extrap, 0.01) is None  # strictly below
    assert solved_at([0.5, 1.5], [1.0, 0.0], 0.1) == 1.5
    with pytest.raises(ValueError, match="extrap_mse has 2"):
        solved_at([1, 2, 3], [1.0, 2.0], 0.1)
    with pytest.raises(ValueError, match="threshold"):
        solved_at([1, 2], [1.0, 2.0], -0.1)


def test_selection_success_and_solved_at_together():
    steps = np.arange(0, 10_000, 1000)
    interp = np.array([9, 8, 7, 1e-9, 1e-10, 1e-11, 1e-12, 1e-12, 1e-11, 1e-11])
    extrap = np.array([90, 80, 70, 1e-3, 1e-6, 2e-6, 1e-7, 3e-7, 1e-7, 1e-7])
    chosen = select_best(steps, interp, extrap)
    assert (chosen.index, chosen.step) == (6, 6000)
    assert is_success(chosen.extrapolation_mse, 1.6e-5)
    assert solved_at(steps, extrap, 1.6e-5) == 4000


# --- wilson_interval ----------------------------------------------------------


@pytest.mark.parametrize(
    "successes, trials, confidence, expected",
    [
        (100, 100, 0.95, (0.963, 1.0)),
        (0, 100, 0.95, (0.0, 0.037)),
        (50, 100, 0.95, (0.404, 0.596)),
        (98, 100, 0.95, (0.930, 0.994)),
        (7, 10, 0.95, (0.397, 0.892)),
        (50, 100, 0.99, (0.375, 0.625)),
        (0, 1, 0.95, (0.0, 0.793)),
    ],
)
def test_wilson_interval_known_values(successes, trials, confidence, expected):
    low, high = wilson_interval(successes, trials, confidence)
    assert (round(low, 3), round(high, 3)) == expected


def test_wilson_interval_hand_formula_and_symmetry():
    # 30/40 with z = 1.959964: center = (0.75 + z²/80)/(1 + z²/40)
    z = 1.959963984540054
    center = (0.75 + z * z / 80) / (1 + z * z / 40)
    half = z / (1 + z * z / 40) * math.sqrt(0.75 * 0.25 / 40 + z * z / 6400)
    assert wilson_interval(30, 40) == pytest.approx((center - half, center + half), rel=1e-12)
    low, high = wilson_interval(10, 40)
    assert (low, high) == pytest.approx((1 - (center + half), 1 - (center - half)), rel=1e-12)


@pytest.mark.parametrize(
    "args, message",
    [
        ((1, 0), "trials"),
        ((1, 2.0), "trials"),
        ((-1, 10), "successes"),
        ((11, 10), "successes"),
        ((0.5, 10), "successes"),
        ((True, 10), "successes"),
        ((1, 10, 1.0), "confidence"),
        ((1, 10, 0.0), "confidence"),
    ],
)
def test_wilson_interval_validation(args, message):
    with pytest.raises(ValueError, match=message):
        wilson_interval(*args)


# --- solved_at_summary (gamma) -------------------------------------------------


def _gamma_profile_deviance(x, mu):
    """2 (ℓ_max − max_k ℓ(μ, k)) by direct numerical maximization with
    scipy.stats.gamma (independent of the implementation's shape equation)."""
    a, _, scale = stats.gamma.fit(x, floc=0)
    best = np.sum(stats.gamma.logpdf(x, a, scale=scale))
    result = optimize.minimize_scalar(
        lambda log_k: -np.sum(stats.gamma.logpdf(x, np.exp(log_k), scale=mu / np.exp(log_k))),
        bounds=(-10, 30), method="bounded", options={"xatol": 1e-10},
    )
    return 2 * (best + result.fun), a * scale


def test_gamma_interval_of_nearly_constant_values_is_the_normal_profile():
    # A gamma with a huge shape is a normal; the normal profile-likelihood
    # interval is x̄ ± σ̂ √(exp(χ²₁/n) − 1) with σ̂² the MLE variance.
    x = np.array([999.0, 1000.0, 1001.0])
    summary = solved_at_summary(x)
    half = math.sqrt(2 / 3) * math.sqrt(math.exp(stats.chi2.ppf(0.95, 1) / 3) - 1)
    assert summary["median"] == 1000.0 and summary["mean"] == 1000.0 and summary["n"] == 3
    assert summary["low"] == pytest.approx(1000 - half, abs=0.01)
    assert summary["high"] == pytest.approx(1000 + half, abs=0.01)


def test_gamma_interval_bounds_are_where_the_deviance_is_chi_square():
    x = np.array([1.2e6, 2.5e6, 0.9e6, 3.1e6, 1.8e6, 1.4e6, 2.2e6])
    summary = solved_at_summary(x)
    for bound in (summary["low"], summary["high"]):
        deviance, fitted_mean = _gamma_profile_deviance(x, bound)
        assert deviance == pytest.approx(stats.chi2.ppf(0.95, 1), abs=2e-3)
    # the gamma maximum-likelihood mean is the sample mean
    assert fitted_mean == pytest.approx(np.mean(x), rel=1e-4)
    assert summary["low"] < np.mean(x) < summary["high"]
    wider = solved_at_summary(x, confidence=0.99)
    assert wider["low"] < summary["low"] and wider["high"] > summary["high"]


def test_gamma_interval_covers_the_true_mean_of_a_large_sample():
    x = np.random.default_rng(0).gamma(2.0, 5e5, size=2000)  # mean 1e6
    summary = solved_at_summary(x)
    assert summary["low"] < 1e6 < summary["high"]
    # large n: close to the normal interval ±1.96 s/√n
    assert (summary["high"] - summary["low"]) / 2 == pytest.approx(
        1.96 * x.std() / math.sqrt(x.size), rel=0.02
    )


def test_solved_at_summary_edge_cases():
    empty = solved_at_summary([])
    assert empty["n"] == 0 and all(math.isnan(empty[k]) for k in ("median", "mean", "low", "high"))
    single = solved_at_summary([4000])
    assert (single["median"], single["mean"]) == (4000.0, 4000.0)
    assert math.isnan(single["low"]) and math.isnan(single["high"])
    constant = solved_at_summary([7000, 7000, 7000])
    assert constant["mean"] == 7000.0 and math.isnan(constant["low"])
    with_zero = solved_at_summary([0, 1000, 2000])
    assert with_zero["median"] == 1000.0 and math.isnan(with_zero["high"])
    with pytest.raises(ValueError, match="non-negative"):
        solved_at_summary([-1000, 1000])
    with pytest.raises(ValueError, match="finite"):
        solved_at_summary([1000, math.nan])
    with pytest.raises(ValueError, match="confidence"):
        solved_at_summary([1, 2], confidence=1.5)


# --- sparsity_summary (beta) ---------------------------------------------------


def _beta_profile_deviance(y, nu):
    a, b, _, _ = stats.beta.fit(y, floc=0, fscale=1)
    best = np.sum(stats.beta.logpdf(y, a, b))
    result = optimize.minimize_scalar(
        lambda log_v: -np.sum(stats.beta.logpdf(y, nu * np.exp(log_v), (1 - nu) * np.exp(log_v))),
        bounds=(-5, 25), method="bounded", options={"xatol": 1e-10},
    )
    return 2 * (best + result.fun), a / (a + b)


def test_sparsity_summary_matches_a_scipy_beta_fit():
    x = np.array([0.01, 0.03, 0.02, 0.12, 0.05, 0.08, 0.015])
    summary = sparsity_summary(x)
    assert summary["mean"] == pytest.approx(np.mean(x))
    for bound in (summary["low"], summary["high"]):
        deviance, fitted = _beta_profile_deviance(2 * x, 2 * bound)
        assert deviance == pytest.approx(stats.chi2.ppf(0.95, 1), abs=5e-3)
    assert 2 * summary["fit_mean"] == pytest.approx(fitted, rel=1e-3)
    assert summary["low"] < summary["fit_mean"] < summary["high"]


def test_sparsity_interval_covers_the_true_mean_of_a_large_sample():
    x = np.random.default_rng(1).beta(2.0, 8.0, size=2000) / 2  # mean 0.1
    summary = sparsity_summary(x)
    assert summary["low"] < 0.1 < summary["high"]
    assert summary["fit_mean"] == pytest.approx(0.1, abs=0.005)
    assert (summary["high"] - summary["low"]) / 2 == pytest.approx(
        1.96 * x.std() / math.sqrt(x.size), rel=0.05
    )


def test_sparsity_summary_of_tiny_errors_and_edge_cases():
    x = np.random.default_rng(2).uniform(1e-7, 1e-6, size=100)
    summary = sparsity_summary(x)
    assert summary["low"] < 5.5e-7 < summary["high"]
    assert summary["low"] > 0 and summary["high"] < 1e-6
    empty = sparsity_summary([])
    assert empty["n"] == 0 and math.isnan(empty["mean"]) and math.isnan(empty["high"])
    constant = sparsity_summary([0.1, 0.1])
    assert constant["mean"] == 0.1 and math.isnan(constant["fit_mean"]) and math.isnan(constant["low"])
    # exact zeros are clipped into the open interval, the fit still works
    zeros = sparsity_summary([0.0, 1e-7, 2e-7, 0.0])
    assert zeros["mean"] == 7.5e-8 and 0 < zeros["low"] < zeros["high"]
    # errors above 0.5 (weights outside [-1, 1]) enter the fit as 0.5
    above = sparsity_summary([0.2, 1.0, 0.3])
    assert above["mean"] == 0.5
    assert above["fit_mean"] == pytest.approx(sparsity_summary([0.2, 0.5, 0.3])["fit_mean"])
    with pytest.raises(ValueError, match="non-negative"):
        sparsity_summary([0.1, -0.1])
    with pytest.raises(ValueError, match="sequence of numbers"):
        sparsity_summary(["a"])


# --- summarize_runs ----------------------------------------------------------


def _rows():
    rows = []
    for seed in range(10):
        success = seed < 8
        rows.append(dict(
            unit="NMU", op="mul", range="U[2,6]", seed=seed, success=success,
            solved_at=(seed + 1) * 1000 if success else None,
            sparsity_error=(seed + 1) * 1e-6 if success else 0.4,
            extrapolation_mse=1e-3 if success else 10.0, threshold=0.16,
        ))
    for seed in range(4):
        rows.append(dict(
            unit="NAU", op="add", range="U[2,6]", seed=seed, success=False,
            solved_at=None, sparsity_error=None, extrapolation_mse=1.0, threshold=1.6e-5,
        ))
    return rows


def test_summarize_runs_one_row_per_group():
    summaries = summarize_runs(_rows(), ("unit", "op", "range"))
    assert [(s["unit"], s["op"]) for s in summaries] == [("NMU", "mul"), ("NAU", "add")]
    nmu, nau = summaries
    assert (nmu["n"], nmu["successes"], nmu["success_rate"]) == (10, 8, 0.8)
    assert (nmu["success_low"], nmu["success_high"]) == wilson_interval(8, 10)
    # solved-at and sparsity over the 8 successful runs only
    steps = solved_at_summary([1000 * k for k in range(1, 9)])
    assert nmu["solved_at_median"] == 4500.0 and nmu["solved_at_mean"] == 4500.0
    assert (nmu["solved_at_low"], nmu["solved_at_high"]) == (steps["low"], steps["high"])
    assert nmu["sparsity_n"] == 8
    assert nmu["sparsity_mean"] == pytest.approx(4.5e-6)
    assert nmu["sparsity_low"] < nmu["sparsity_fit_mean"] < nmu["sparsity_high"]
    assert (nau["n"], nau["successes"], nau["success_low"]) == (4, 0, 0.0)
    assert nau["success_high"] == pytest.approx(wilson_interval(0, 4)[1])
    assert math.isnan(nau["solved_at_median"]) and math.isnan(nau["sparsity_mean"])


def test_summarize_runs_recomputes_success_from_a_threshold_key():
    rows = _rows()
    for row in rows:
        row.pop("success")
    rows[0]["extrapolation_mse"] = 0.16  # equal to the threshold: a failure
    (nmu,) = summarize_runs(rows[:10], "unit", threshold_key="threshold")
    assert (nmu["unit"], nmu["successes"]) == ("NMU", 7)
    (by_op,) = summarize_runs(rows[10:], ["op"], threshold_key="threshold")
    assert (by_op["op"], by_op["n"], by_op["successes"]) == ("add", 4, 0)


def test_summarize_runs_validation():
    with pytest.raises(ValueError, match="group key"):
        summarize_runs([dict(op="add", success=True, solved_at=1)], ("unit", "op"))
    with pytest.raises(ValueError, match="no 'solved_at'"):
        summarize_runs([dict(unit="NAU", success=True, solved_at=None)], "unit")
    with pytest.raises(ValueError, match="must be a bool"):
        summarize_runs([dict(unit="NAU", success=1.0)], "unit")
    with pytest.raises(ValueError, match="lacks 'success'"):
        summarize_runs([dict(unit="NAU")], "unit")
    with pytest.raises(ValueError, match="lacks 'threshold'"):
        summarize_runs([dict(unit="NAU", extrapolation_mse=1.0)], "unit", threshold_key="threshold")
    with pytest.raises(ValueError, match="not a mapping"):
        summarize_runs([("NAU", True)], "unit")
    assert summarize_runs([], "unit") == []


# --- single-module (Primer) thresholds -----------------------------------------


@pytest.mark.parametrize("input_size", [2, 10])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_single_module_threshold_matches_the_perturbed_unit_computed_directly(op, input_size):
    # the ε-perturbed unit written out plainly (weights ±(1 − ε) on the two
    # relevant inputs, ε on the others), its MSE on a fresh sample
    eps = 1e-5
    task = ArithmeticTask(op, input_size=input_size, subset_ratio=1 / input_size, overlap_ratio=0.0)
    threshold, stderr = success_threshold(task, "U[2,6]", samples=200_000, single_module=True,
                                          return_stderr=True, seed=3)
    rng = np.random.default_rng(11)
    x = rng.uniform(2.0, 6.0, size=(200_000, input_size))
    a, b = x[:, 0], x[:, 1]
    w = np.full(input_size, eps)
    w[:2] = 1.0 - eps
    if op in ("add", "sub"):
        sign = np.ones(input_size)
        if op == "sub":
            sign[1] = -1.0
        y_eps = x @ (w * sign)
        y = a + b if op == "add" else a - b
    elif op == "mul":
        y_eps = np.prod(w * x + 1.0 - w, axis=1)
        y = a * b
    else:
        exponents = w.copy()
        exponents[1] = -(1.0 - eps)
        y_eps = np.exp(np.log(x) @ exponents)
        y = a / b
    direct = np.mean((y_eps - y) ** 2)
    # two independent Monte-Carlo estimates of one expectation
    assert direct == pytest.approx(threshold, rel=0.05)
    assert stderr < 0.02 * threshold


def test_single_module_threshold_closed_form_and_checks():
    # add with two inputs: ε² E[(a + b)²], a, b ~ U[2, 6]: ε² (2 · 16/12 + 8²)
    task = ArithmeticTask("add", input_size=2, subset_ratio=0.5, overlap_ratio=0.0)
    expected = 1e-10 * (2 * 16 / 12 + 64)
    assert success_threshold(task, "U[2,6]", samples=400_000, single_module=True) == pytest.approx(expected, rel=0.01)
    with pytest.raises(ValueError, match="one-element subsets"):
        success_threshold(ArithmeticTask("add"), "U[2,6]", single_module=True, samples=100)
    with pytest.raises(ValueError, match="cannot both"):
        success_threshold(task, "U[2,6]", single_module=True, perturb_output=True, samples=100)
    with pytest.raises(ValueError, match="not finite"):
        success_threshold(ArithmeticTask("squared", input_size=2, subset_ratio=0.5, overlap_ratio=0.0),
                          "U[2,6]", single_module=True, samples=100)
