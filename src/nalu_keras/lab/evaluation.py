"""Measures of how well a unit has learned its arithmetic, and the
statistics of the Madsen & Johansen (2020) benchmark (success thresholds,
model selection, success rates and their summaries)."""

from __future__ import annotations

import collections
import collections.abc
import json
import math
import numbers
import os

import numpy as np

from nalu_keras.lab._files import atomic_write
from nalu_keras.metrics import sparsity_error  # noqa: F401  (re-exported: the lab's measures in one place)

# ---------------------------------------------------------------------------
# Benchmark statistics (Madsen & Johansen 2020): pure numpy / scipy, no Keras.
#
# success_threshold   the extrapolation MSE of an ε-perturbed perfect solution
# select_best         model selection at the lowest validation MSE
# is_success          extrapolation MSE at the selected step below the threshold
# solved_at           the first logged step below the threshold
# wilson_interval     binomial confidence interval of a success rate
# solved_at_summary   median, mean and gamma-likelihood interval of solved-at
# sparsity_summary    mean and beta-likelihood interval of sparsity errors
# summarize_runs      one summary per group of tidy per-run rows
#
# scipy is imported inside the functions that need it, so that importing
# `nalu_keras` stays fast.

THRESHOLD_OPS = ("add", "sub", "mul", "div", "squared", "root")

# Rows of inputs drawn at a time by `success_threshold`. Part of the
# definition of the estimate (the random stream is consumed chunk by chunk),
# so it is a constant, not an argument.
_THRESHOLD_CHUNK_ROWS = 20_000

# (op, range parts, ε, input size, subset size, overlap size, samples, seed,
#  perturb_output) -> (mse, standard error)
_THRESHOLD_CACHE = {}


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _perturbation_errors(sum_a, sum_b, sum_all, epsilon, perturb_output):
    """y_ε − y for every op, from the per-example sums of one chunk.

    The differences are written so that they do not cancel: with
    a' = a + da the errors are formed from da, db directly rather than as
    the difference of two nearly equal outputs.
    """
    eps = epsilon
    a, b = sum_a, sum_b
    # hidden layer: weight 1 − ε on the subset, ε on the other inputs
    da = eps * (sum_all - 2.0 * a)
    db = eps * (sum_all - 2.0 * b)
    a_eps, b_eps = a + da, b + db
    errors = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if not perturb_output:
            errors["add"] = da + db
            errors["sub"] = da - db
            errors["mul"] = a * db + b * da + da * db
            errors["div"] = (da * b - a * db) / (b * b_eps)
            errors["squared"] = da * (2.0 * a + da)
            errors["root"] = da / (np.sqrt(a_eps) + np.sqrt(a))
        else:
            errors["add"] = da + db - eps * (a_eps + b_eps)
            errors["sub"] = da - db - eps * (a_eps - b_eps)
            # NMU: (1 − ε) z + ε = z + (dz − ε (z' − 1)) for each hidden unit
            du = da - eps * (a_eps - 1.0)
            dv = db - eps * (b_eps - 1.0)
            errors["mul"] = a * dv + b * du + du * dv
            errors["squared"] = du * (2.0 * a + du)
            # power form exp(Σ_j w_j log z_j), positive a, b only
            log_ratio = (1.0 - eps) * (np.log1p(da / a) - np.log1p(db / b)) - eps * (
                np.log(a) - np.log(b)
            )
            errors["div"] = (a / b) * np.expm1(log_ratio)
            log_ratio = (
                0.5 * (1.0 - eps) * np.log1p(da / a) - 0.5 * eps * np.log(a) + eps * np.log(b_eps)
            )
            errors["root"] = np.sqrt(a) * np.expm1(log_ratio)
    return errors


def _single_module_errors(a, b, others, epsilon):
    """y_ε − y of one unit reading x directly (the Primer's single-module
    task: a and b are single inputs, `others` the remaining inputs, shape
    (rows, n − 2)): the weights that should be ±1 are ±(1 − ε), the others ε.

        add, sub  NAU:   (1 − ε)(a ± b) + ε Σ others
        mul       NMU:   ((1 − ε) a + ε)((1 − ε) b + ε) Π (ε x + 1 − ε)
        div       power form (NAC•, NPU): sign(a/b) |a|^(1−ε) |b|^−(1−ε) Π |x|^ε
    "squared" and "root" have no single-module form (NaN).
    """
    eps = epsilon
    sum_o = others.sum(axis=1)
    errors = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        errors["add"] = eps * (sum_o - (a + b))
        errors["sub"] = eps * (sum_o - (a - b))
        du, dv = eps * (1.0 - a), eps * (1.0 - b)
        log_o = np.log1p(eps * (others - 1.0)).sum(axis=1)
        errors["mul"] = (a + du) * (b + dv) * np.expm1(log_o) + (a * dv + b * du + du * dv)
        log_ratio = -eps * (np.log(np.abs(a)) - np.log(np.abs(b))) + eps * np.log(np.abs(others)).sum(axis=1)
        errors["div"] = (a / b) * np.expm1(log_ratio)
        errors["squared"] = np.full_like(a, np.nan)
        errors["root"] = np.full_like(a, np.nan)
    return errors


def _simulate_thresholds(value_range, epsilon, input_size, subset_size, overlap_size, samples, seed):
    """One Monte-Carlo pass for every op and both perturbation forms.

    Returns {(op, form): (mse, standard error of the mse)} with form False
    (the published definition), True (output layer perturbed too) and, for
    one-element subsets without overlap, "single" (one unit reading the
    inputs directly, see `_single_module_errors`). The subsets are placed at offset 0
    (a = x[0:s], b = x[s−o : 2s−o]): the
    inputs are iid, so the distribution of the error does not depend on the
    offset, and the threshold belongs to (op, range, sizes), not to one
    data-set seed.
    """
    rng = np.random.default_rng(seed)
    s, o = subset_size, overlap_size
    # running count, mean and sum of squared deviations of the squared error
    forms = (False, True, "single") if (s == 1 and o == 0) else (False, True)
    stats = {(op, form): (0, 0.0, 0.0) for op in THRESHOLD_OPS for form in forms}
    done = 0
    while done < samples:
        rows = min(_THRESHOLD_CHUNK_ROWS, samples - done)
        x = value_range.sample(rng, (rows, input_size))
        sum_a = x[:, :s].sum(axis=1)
        sum_b = x[:, s - o : 2 * s - o].sum(axis=1)
        sum_all = x.sum(axis=1)
        for form in forms:
            if form == "single":
                errors = _single_module_errors(x[:, 0], x[:, 1], x[:, 2:], epsilon)
            else:
                errors = _perturbation_errors(sum_a, sum_b, sum_all, epsilon, form)
            for op, error in errors.items():
                squared = error * error
                n1, mean1, m2_1 = stats[(op, form)]
                mean2 = float(np.mean(squared))
                m2_2 = float(np.sum((squared - mean2) ** 2))
                n = n1 + rows
                delta = mean2 - mean1
                mean = mean1 + delta * rows / n
                m2 = m2_1 + m2_2 + delta * delta * n1 * rows / n
                stats[(op, form)] = (n, mean, m2)
        done += rows
    result = {}
    for key, (n, mean, m2) in stats.items():
        stderr = math.sqrt(m2 / (n - 1) / n) if math.isfinite(m2) else math.nan
        result[key] = (mean, stderr)
    return result


def _threshold_cache_text(key):
    op, parts, eps, n, s, o, samples, seed, form = key
    text_range = "u".join(f"[{lo!r},{hi!r}]" for lo, hi in parts)
    return (
        f"op={op}|range={text_range}|epsilon={eps!r}|input_size={n}|subset_size={s}"
        f"|overlap_size={o}|samples={samples}|seed={seed}|"
        + ("form=single" if form == "single" else f"perturb_output={form}")
    )


class NoThresholdError(ValueError):
    """The ε-perturbed solution is not finite on the range: no success
    threshold exists (e.g. the root of negative sums)."""


def _is_cached_number(value):
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _read_threshold_file(path):
    """The entries of the threshold cache `path` ({} if there is none).

    A file that cannot be read, is not JSON, or holds entries of another
    shape is a ValueError naming the file: a damaged cache never turns into
    missing thresholds (and failed seeds).
    """
    if not os.path.exists(path):
        return {}
    problem = f"The threshold cache {path!r}"
    remedy = "; delete it to recompute the thresholds"
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{problem} cannot be read as JSON ({error}){remedy}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{problem} does not hold a JSON object{remedy}")
    for key, entry in data.items():
        if not (isinstance(entry, dict) and _is_cached_number(entry.get("mse"))
                and _is_cached_number(entry.get("stderr"))):
            raise ValueError(f"{problem} has a malformed entry {key!r}: {entry!r}{remedy}")
    return data


def _write_threshold_file(path, entries):
    data = _read_threshold_file(path)
    data.update(entries)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path) as stream:
        json.dump(data, stream, indent=1, sort_keys=True)


def check_threshold_cache(path):
    """Raise a ValueError naming `path` if it exists and is not a readable
    threshold cache (check it before a long run, not after)."""
    _read_threshold_file(os.fspath(path))


def _finite_or_none(value):
    return value if math.isfinite(value) else None


def success_threshold(
    task,
    value_range,
    epsilon=1e-5,
    samples=1_000_000,
    seed=0,
    subset_size=None,
    *,
    perturb_output=False,
    single_module=False,
    cache_path=None,
    return_stderr=False,
):
    """The success threshold of Madsen & Johansen (2020) for one task and range.

    A run succeeds when its extrapolation MSE is below the MSE of a "nearly
    perfect" network, estimated here by Monte Carlo in float64:

        threshold = E_x[(y_ε(x) − op(a, b))²],   x_i iid from `value_range`

    The network is the 100 → 2 → 1 solution of the task. Its hidden layer
    computes a' and b' with every weight that should be 1 set to 1 − ε and
    every weight that should be 0 set to ε:

        a' = (1 − ε) Σ_{i ∈ A} x_i + ε Σ_{i ∉ A} x_i,   b' likewise with B.

    `perturb_output=False` (default; the published definition): the output
    layer is exact, y_ε = op(a', b'), i.e. a'+b', a'−b', a'·b', a'/b', a'²,
    √a'. This is the loss L(W1^ε, W2^*) of Madsen & Johansen's tables and
    reproduces their thresholds (see below).

    `perturb_output=True` (a stricter variant, not the published one): the
    output layer's two weights are perturbed too; a target weight t ≠ 0
    becomes t·(1 − ε), a target 0 becomes ε:
        add, sub  NAU:  (1 − ε) a' ± (1 − ε) b'
        mul       NMU:  ((1 − ε) a' + ε) · ((1 − ε) b' + ε)
        squared   NMU with both hidden units computing a:  ((1 − ε) a' + ε)²
        div       power form (NAC•/NPU):  a'^(1 − ε) · b'^(−(1 − ε))
        root      power form, weights (½, 0):  a'^((1 − ε)/2) · b'^ε
    The power forms need a', b' > 0.

    The threshold does not depend on the task's seed: the inputs are iid, so
    the position (offset) of the subsets does not change the distribution;
    the subsets are placed at the start of the input.

    Published values. Madsen & Johansen's script took its subset ranges
    inclusively, so their thresholds were made with 26-element subsets
    overlapping in 13 (for subset_ratio 0.25, overlap_ratio 0.5, n = 100),
    while their data use 25 and 12. `subset_size=26` reproduces the
    published numbers; the default uses the sizes of `task`, i.e. of the
    data actually generated.

    Results are cached per (op, range, ε, input/subset/overlap size, samples,
    seed, perturb_output) in this process and, with `cache_path`, in a JSON
    file, so each is computed once. One Monte-Carlo pass fills the cache for
    all six ops and both forms at once.

    Args:
        task: an `ArithmeticTask` (op, input_size, subset_ratio,
            overlap_ratio are used).
        value_range: the extrapolation range, a `ValueRange` or a string
            such as "U[2,6]" or "[-6,-2]u[2,6]".
        epsilon: the perturbation, 0 < ε < 0.5.
        samples: number of Monte-Carlo examples (≥ 2).
        seed: seed of the Monte-Carlo stream (non-negative integer).
        subset_size: override the subset size; the overlap is then
            floor(overlap_ratio · subset_size).
        perturb_output: also perturb the output layer (see above).
        single_module: the threshold of one unit reading the input directly
            (the Primer's single-module task; needs one-element subsets
            without overlap, e.g. `ArithmeticTask(op, input_size=2,
            subset_ratio=0.5, overlap_ratio=0)`): the unit's weights that
            should be ±1 are ±(1 − ε), the others ε; add, sub (NAU form),
            mul (NMU form), div (power form) only.
        cache_path: optional JSON file that stores computed thresholds.
        return_stderr: also return the Monte-Carlo standard error.

    Returns:
        The threshold (float), or (threshold, standard error) with
        `return_stderr=True`.

    Raises:
        NoThresholdError (a ValueError): when the perturbed solution is not
            finite on this range (e.g. root of negative sums).
        ValueError: on invalid arguments, or a `cache_path` that exists but
            is not a readable threshold cache.
    """
    from nalu_keras.lab.tasks.arithmetic import ArithmeticTask, ValueRange

    if not isinstance(task, ArithmeticTask):
        raise ValueError(f"task must be an ArithmeticTask, got {type(task).__name__}.")
    value_range = ValueRange.parse(value_range)
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise ValueError(f"epsilon must be a number, got {epsilon!r}.")
    epsilon = float(epsilon)
    if not 0.0 < epsilon < 0.5:
        raise ValueError(f"epsilon must be in (0, 0.5), got {epsilon!r}.")
    if not _is_int(samples) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}.")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    input_size = int(task.input_size)
    if subset_size is None:
        size, overlap = task.subset_size, task.overlap_size
    else:
        if not _is_int(subset_size) or subset_size < 1:
            raise ValueError(f"subset_size must be a positive integer, got {subset_size!r}.")
        size = int(subset_size)
        overlap = int(math.floor(task.overlap_ratio * size))
        if 2 * size - overlap > input_size:
            raise ValueError(
                f"Two subsets of {size} overlapping in {overlap} do not fit in "
                f"input_size={input_size}."
            )
    if cache_path is not None and not isinstance(cache_path, (str, os.PathLike)):
        raise ValueError(f"cache_path must be a path or None, got {cache_path!r}.")

    def key_for(op, form):
        return (op, value_range.parts, epsilon, input_size, size, overlap, int(samples), int(seed), form)

    if single_module:
        if perturb_output:
            raise ValueError("single_module and perturb_output cannot both be set.")
        if size != 1 or overlap != 0:
            raise ValueError(
                "single_module needs one-element subsets without overlap (a and b single "
                f"inputs); this task has subsets of {size} overlapping in {overlap}."
            )
    form = "single" if single_module else bool(perturb_output)
    key = key_for(task.op, form)
    stored = None
    if cache_path is not None:
        stored = _read_threshold_file(os.fspath(cache_path)).get(_threshold_cache_text(key))
    if key not in _THRESHOLD_CACHE and stored is not None:
        mse, stderr = stored.get("mse"), stored.get("stderr")
        _THRESHOLD_CACHE[key] = (
            math.nan if mse is None else float(mse),
            math.nan if stderr is None else float(stderr),
        )
    if key not in _THRESHOLD_CACHE:
        computed = _simulate_thresholds(value_range, epsilon, input_size, size, overlap, int(samples), int(seed))
        entries = {}
        for (op, form), value in computed.items():
            _THRESHOLD_CACHE[key_for(op, form)] = value
            entries[_threshold_cache_text(key_for(op, form))] = {
                "mse": _finite_or_none(value[0]),
                "stderr": _finite_or_none(value[1]),
            }
        if cache_path is not None:
            _write_threshold_file(os.fspath(cache_path), entries)
    elif cache_path is not None and stored is None:
        # known in this process, not yet in the file: the file records every
        # threshold its results used
        mse, stderr = _THRESHOLD_CACHE[key]
        _write_threshold_file(os.fspath(cache_path), {_threshold_cache_text(key): {
            "mse": _finite_or_none(mse), "stderr": _finite_or_none(stderr)}})
    mse, stderr = _THRESHOLD_CACHE[key]
    if not math.isfinite(mse):
        raise NoThresholdError(
            f"The ε-perturbed solution of {task.op!r} is not finite on {value_range} "
            f"(form: {'single module' if single_module else f'perturb_output={bool(perturb_output)}'}); "
            "no threshold can be estimated."
        )
    return (mse, stderr) if return_stderr else mse


def clear_threshold_cache():
    """Forget the thresholds cached in this process (the JSON file is kept)."""
    _THRESHOLD_CACHE.clear()


# --- model selection and success --------------------------------------------

Selection = collections.namedtuple(
    "Selection", ["index", "step", "interpolation_mse", "extrapolation_mse"]
)
Selection.__doc__ = "The logged step chosen by `select_best`."


def _as_curve(name, values):
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers.") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}.")
    return array


def _check_steps(steps, *curves):
    steps = _as_curve("steps", steps)
    if steps.size == 0:
        raise ValueError("steps is empty: nothing was logged.")
    if not np.all(np.isfinite(steps)):
        raise ValueError("steps must be finite numbers.")
    if np.any(np.diff(steps) <= 0):
        raise ValueError("steps must be strictly increasing.")
    for name, curve in curves:
        if curve.shape != steps.shape:
            raise ValueError(
                f"{name} has {curve.size} entries but steps has {steps.size}."
            )
    return steps


def _step_value(value):
    value = float(value)
    return int(value) if value.is_integer() else value


def _check_threshold(threshold):
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise ValueError(f"threshold must be a number, got {threshold!r}.")
    threshold = float(threshold)
    if math.isnan(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a non-negative number, got {threshold!r}.")
    return threshold


def select_best(steps, interp_mse, extrap_mse, window=None):
    """Model selection: the logged step with the lowest validation MSE.

    The validation set is the interpolation range. NaN validation losses
    count as +inf; ties go to the earliest step (so a run whose losses are
    all NaN selects its first logged step).

    Args:
        steps: logged training steps, strictly increasing.
        interp_mse: validation (interpolation) MSE at each logged step.
        extrap_mse: test (extrapolation) MSE at each logged step.
        window: optional; choose only among the last `window` logged steps.
            None (default) uses all of them, as the protocol states.
            Madsen & Johansen's analysis chooses among the last 5,000 logged
            points, i.e. every logged step but step 0 in a run of 5·10⁶
            steps logged every 1,000 (and every step in shorter runs).

    Returns:
        Selection(index, step, interpolation_mse, extrapolation_mse).
    """
    interp = _as_curve("interp_mse", interp_mse)
    extrap = _as_curve("extrap_mse", extrap_mse)
    steps = _check_steps(steps, ("interp_mse", interp), ("extrap_mse", extrap))
    start = 0
    if window is not None:
        if not _is_int(window) or window < 1:
            raise ValueError(f"window must be a positive integer or None, got {window!r}.")
        start = max(steps.size - int(window), 0)
    losses = np.where(np.isnan(interp[start:]), np.inf, interp[start:])
    index = start + int(np.argmin(losses))
    return Selection(index, _step_value(steps[index]), float(interp[index]), float(extrap[index]))


def is_success(extrap_mse_at_selected, threshold):
    """True when the extrapolation MSE at the selected step is below the
    threshold (strictly). NaN or inf MSE is a failure."""
    threshold = _check_threshold(threshold)
    if isinstance(extrap_mse_at_selected, bool) or not isinstance(extrap_mse_at_selected, numbers.Real):
        raise ValueError(f"extrap_mse_at_selected must be a number, got {extrap_mse_at_selected!r}.")
    value = float(extrap_mse_at_selected)
    return bool(value < threshold)


def solved_at(steps, extrap_mse, threshold):
    """The first logged step whose extrapolation MSE is below the threshold.

    NaN counts as not below. Returns the step (int when integral), or None
    when the threshold is never reached.
    """
    threshold = _check_threshold(threshold)
    extrap = _as_curve("extrap_mse", extrap_mse)
    steps = _check_steps(steps, ("extrap_mse", extrap))
    below = np.flatnonzero(extrap < threshold)
    return _step_value(steps[below[0]]) if below.size else None


# --- intervals and summaries -------------------------------------------------


def _check_confidence(confidence):
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}.")
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    return confidence


def wilson_interval(successes, trials, confidence=0.95):
    """Wilson score interval of a binomial proportion.

        p̂ = k/n,  z = Φ⁻¹(1 − (1 − confidence)/2)
        center = (p̂ + z²/2n) / (1 + z²/n)
        half   = z/(1 + z²/n) · √(p̂(1 − p̂)/n + z²/4n²)

    Returns (low, high), clipped to [0, 1]. E.g. 100/100 → (0.963, 1.0),
    0/100 → (0.0, 0.037), 50/100 → (0.404, 0.596).
    """
    from scipy import stats

    if not _is_int(trials) or trials < 1:
        raise ValueError(f"trials must be a positive integer, got {trials!r}.")
    if not _is_int(successes) or not 0 <= successes <= trials:
        raise ValueError(
            f"successes must be an integer in [0, trials={trials}], got {successes!r}."
        )
    confidence = _check_confidence(confidence)
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    n = float(trials)
    p = successes / n
    denominator = 1.0 + z * z / n
    center = (p + z * z / (2.0 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == trials else min(1.0, center + half)
    return low, high


def _as_sample(name, values):
    try:
        array = np.asarray(list(values), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers.") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of numbers.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite numbers.")
    return array


def _expand_bracket(function, start, step, limit):
    """Walk from `start` by `step` until `function` turns positive.

    Returns the (inside, outside) pair that brackets the sign change, or
    None when `limit` is passed first.
    """
    inside = start
    while abs(inside - start) < limit:
        outside = inside + step
        if function(outside) > 0:
            return inside, outside
        inside = outside
        step *= 2.0
    return None


def _gamma_shape_for(c):
    """The shape k > 0 with log k − ψ(k) = c (c > 0)."""
    from scipy import optimize, special

    def gap(log_k):
        k = math.exp(log_k)
        return math.log(k) - float(special.digamma(k)) - c

    # Minka's closed-form approximation as the starting point
    guess = (3.0 - c + math.sqrt((c - 3.0) ** 2 + 24.0 * c)) / (12.0 * c)
    low = high = math.log(guess)
    while gap(low) < 0:
        low -= 1.0
    while gap(high) > 0:
        high += 1.0
    return math.exp(optimize.brentq(gap, low, high, xtol=1e-14, rtol=1e-14))


def _gamma_mean_interval(x, confidence):
    """Profile-likelihood interval for the mean of a gamma distribution."""
    from scipy import special, stats

    n = x.size
    m = float(np.mean(x))
    # log m − mean(log x) ≥ 0, formed without cancellation
    jensen_gap = -float(np.mean(np.log1p((x - m) / m)))
    if not jensen_gap > 0:
        return math.nan, math.nan

    def profile(mu):
        ratio = m / mu
        c = (ratio - 1.0 - math.log(ratio)) + jensen_gap
        k = _gamma_shape_for(c)
        mean_log_x = math.log(m) - jensen_gap
        return n * ((k - 1.0) * mean_log_x - k * ratio - k * math.log(mu / k) - float(special.gammaln(k)))

    best = profile(m)
    critical = float(stats.chi2.ppf(confidence, 1))

    def excess(log_mu):
        return 2.0 * (best - profile(math.exp(log_mu))) - critical

    from scipy import optimize

    log_m = math.log(m)
    bounds = []
    for direction in (-1.0, 1.0):
        bracket = _expand_bracket(excess, log_m, direction * 0.05, 60.0)
        if bracket is None:
            bounds.append(0.0 if direction < 0 else math.inf)
            continue
        inside, outside = sorted(bracket)
        root = optimize.brentq(excess, inside, outside, xtol=1e-13, rtol=1e-13)
        bounds.append(math.exp(root))
    return bounds[0], bounds[1]


def solved_at_summary(values, confidence=0.95):
    """Median and mean of solved-at steps, with an interval for the mean.

    The interval is a profile-likelihood interval from a gamma model
    parametrized by its mean μ and shape k: for each μ the shape is
    maximized out (it solves log k − ψ(k) = x̄/μ − 1 + log μ − mean(log x)),
    and the interval is {μ : 2(ℓ(x̄) − ℓ_p(μ)) ≤ χ²₁(confidence)}. The
    gamma maximum-likelihood mean is the sample mean x̄. This is the
    likelihood-ratio interval that Madsen & Johansen's summaries compute
    (with R's bbmle) for the same model.

    With fewer than two values, identical values, or any value ≤ 0 (the
    gamma likelihood needs positive data) the interval is (nan, nan).

    Returns:
        dict(n, median, mean, low, high); all nan for an empty input.
    """
    x = _as_sample("values", values)
    confidence = _check_confidence(confidence)
    if np.any(x < 0):
        raise ValueError("solved-at steps must be non-negative.")
    if x.size == 0:
        return dict(n=0, median=math.nan, mean=math.nan, low=math.nan, high=math.nan)
    summary = dict(n=int(x.size), median=float(np.median(x)), mean=float(np.mean(x)))
    if x.size < 2 or np.any(x <= 0) or np.all(x == x[0]):
        low = high = math.nan
    else:
        low, high = _gamma_mean_interval(x, confidence)
    summary.update(low=low, high=high)
    return summary


_BETA_CLIP = 1e-15


def _beta_fit(y, confidence):
    """Maximum-likelihood mean of a beta distribution and its profile
    interval, for y in (0, 1). Returns (mean, low, high)."""
    from scipy import optimize, special, stats

    n = y.size
    mean_log_y = float(np.mean(np.log(y)))
    mean_log_1my = float(np.mean(np.log1p(-y)))

    def precision_score(log_v, nu):
        v = math.exp(log_v)
        return (
            nu * mean_log_y
            + (1.0 - nu) * mean_log_1my
            - nu * float(special.digamma(nu * v))
            - (1.0 - nu) * float(special.digamma((1.0 - nu) * v))
            + float(special.digamma(v))
        )

    def profile(t):
        """Log-likelihood at mean ν = expit(t), precision maximized out."""
        nu = float(special.expit(t))
        low, high = -5.0, 5.0
        while precision_score(low, nu) < 0:
            low -= 5.0
        while precision_score(high, nu) > 0:
            high += 5.0
            if high > 80.0:  # the data cannot be told from a point mass
                return math.nan
        v = math.exp(optimize.brentq(precision_score, low, high, args=(nu,), xtol=1e-12))
        alpha, beta = nu * v, (1.0 - nu) * v
        return n * (
            (alpha - 1.0) * mean_log_y + (beta - 1.0) * mean_log_1my - float(special.betaln(alpha, beta))
        )

    start = float(special.logit(np.mean(y)))
    if not math.isfinite(profile(start)):
        return math.nan, math.nan, math.nan
    fit = optimize.minimize_scalar(
        lambda t: -profile(t), bracket=(start - 0.1, start + 0.1), method="brent", tol=1e-10
    )
    t_hat = float(fit.x)
    best = -float(fit.fun)
    critical = float(stats.chi2.ppf(confidence, 1))

    def excess(t):
        value = profile(t)
        return math.inf if math.isnan(value) else 2.0 * (best - value) - critical

    bounds = []
    for direction in (-1.0, 1.0):
        bracket = _expand_bracket(excess, t_hat, direction * 0.05, 40.0)
        if bracket is None:
            bounds.append(0.0 if direction < 0 else 1.0)
            continue
        inside, outside = sorted(bracket)
        bounds.append(float(special.expit(optimize.brentq(excess, inside, outside, xtol=1e-12))))
    return float(special.expit(t_hat)), bounds[0], bounds[1]


def sparsity_summary(values, confidence=0.95):
    """Mean sparsity error with a beta-likelihood interval.

    Sparsity errors lie in [0, 0.5]. They are rescaled to y = 2x in [0, 1],
    clipped to [1e-15, 1 − 1e-15] (a beta density is not finite at exact 0
    or 1), and modelled as Beta with mean ν and precision v (α = νv,
    β = (1 − ν)v). For each ν the precision is maximized out, the maximum-
    likelihood mean ν̂ is found on the logit scale, and the interval is the
    profile-likelihood interval {ν : 2(ℓ(ν̂) − ℓ_p(ν)) ≤ χ²₁(confidence)};
    all are divided by 2 to return to the sparsity scale. This is the
    model of Madsen & Johansen's summaries, whose tables report the fitted
    mean (`fit_mean`). An error above 0.5 (only possible for weights outside
    [−1, 1]) enters the fit as 0.5, as in their script; `mean` is the plain
    average of the raw values.

    With fewer than two values or identical values the interval and the
    fitted mean are nan.

    Returns:
        dict(n, mean, fit_mean, low, high).
    """
    x = _as_sample("values", values)
    confidence = _check_confidence(confidence)
    if np.any(x < 0):
        raise ValueError("sparsity errors must be non-negative.")
    if x.size == 0:
        return dict(n=0, mean=math.nan, fit_mean=math.nan, low=math.nan, high=math.nan)
    summary = dict(n=int(x.size), mean=float(np.mean(x)))
    y = np.clip(2.0 * x, _BETA_CLIP, 1.0 - _BETA_CLIP)
    if y.size < 2 or np.all(y == y[0]):
        fit_mean = low = high = math.nan
    else:
        fit_mean, low, high = (value / 2.0 for value in _beta_fit(y, confidence))
    summary.update(fit_mean=fit_mean, low=low, high=high)
    return summary


def _is_missing(value):
    return value is None or (isinstance(value, numbers.Real) and math.isnan(value))


def summarize_runs(
    rows,
    group_keys=("unit", "op", "range"),
    threshold_key=None,
    *,
    success_key="success",
    extrapolation_key="extrapolation_mse",
    solved_at_key="solved_at",
    sparsity_key="sparsity_error",
    confidence=0.95,
):
    """One summary per group of tidy per-run rows (the paper's table rows).

    Each row is a mapping for one run (one seed), e.g.
    {"unit": "NMU", "op": "mul", "range": "U[2,6]", "seed": 3,
     "success": True, "solved_at": 1.4e6, "sparsity_error": 3e-7}.

    Success comes from `row[success_key]` (a bool), or, when
    `threshold_key` is given, is recomputed as
    `is_success(row[extrapolation_key], row[threshold_key])`.
    Solved-at and sparsity are summarized over the successful runs only, as
    in the paper; a successful run must have a solved-at step, a missing
    (None/nan/absent) sparsity error is left out of the sparsity summary.

    Returns:
        A list of dicts in order of first appearance, each with the group
        keys and n, successes, success_rate, success_low, success_high,
        solved_at_median, solved_at_mean, solved_at_low, solved_at_high,
        sparsity_n, sparsity_mean, sparsity_fit_mean, sparsity_low,
        sparsity_high.
    """
    if isinstance(group_keys, str):
        group_keys = (group_keys,)
    group_keys = tuple(group_keys)
    confidence = _check_confidence(confidence)
    groups = {}
    for number, row in enumerate(rows):
        if not isinstance(row, collections.abc.Mapping):
            raise ValueError(f"Row {number} is not a mapping: {row!r}.")
        missing = [key for key in group_keys if key not in row]
        if missing:
            raise ValueError(f"Row {number} lacks the group key(s) {missing}.")
        if threshold_key is None:
            if success_key not in row:
                raise ValueError(f"Row {number} lacks {success_key!r}.")
            success = row[success_key]
            if not isinstance(success, (bool, np.bool_)):
                raise ValueError(f"Row {number}: {success_key!r} must be a bool, got {success!r}.")
            success = bool(success)
        else:
            for key in (extrapolation_key, threshold_key):
                if key not in row:
                    raise ValueError(f"Row {number} lacks {key!r}.")
            mse = row[extrapolation_key]
            success = is_success(math.nan if mse is None else mse, row[threshold_key])
        group = groups.setdefault(tuple(row[key] for key in group_keys), [0, 0, [], []])
        group[0] += 1
        if not success:
            continue
        group[1] += 1
        step = row.get(solved_at_key)
        if _is_missing(step):
            raise ValueError(f"Row {number} is a success but has no {solved_at_key!r}.")
        group[2].append(step)
        sparsity = row.get(sparsity_key)
        if not _is_missing(sparsity):
            group[3].append(sparsity)

    summaries = []
    for values, (n, successes, steps, sparsities) in groups.items():
        low, high = wilson_interval(successes, n, confidence)
        steps = solved_at_summary(steps, confidence)
        sparsity = sparsity_summary(sparsities, confidence)
        summary = dict(zip(group_keys, values))
        summary.update(
            n=n,
            successes=successes,
            success_rate=successes / n,
            success_low=low,
            success_high=high,
            solved_at_median=steps["median"],
            solved_at_mean=steps["mean"],
            solved_at_low=steps["low"],
            solved_at_high=steps["high"],
            sparsity_n=sparsity["n"],
            sparsity_mean=sparsity["mean"],
            sparsity_fit_mean=sparsity["fit_mean"],
            sparsity_low=sparsity["low"],
            sparsity_high=sparsity["high"],
        )
        summaries.append(summary)
    return summaries
