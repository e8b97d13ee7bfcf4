"""The many-seeds-at-once trainer against the per-seed `model.fit` path.

Small and seeded: a few seeds, tens of steps, small evaluation sets. No
timings here (see benchmarks/throughput.py).
"""

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="the vectorized trainer needs the JAX backend"
)

import jax.numpy as jnp  # noqa: E402

from nalu_keras import NAU, NMU, sparsity_error  # noqa: E402
from nalu_keras.lab.tasks.arithmetic import ArithmeticTask, ValueRange  # noqa: E402
from nalu_keras.lab.training import (  # noqa: E402
    draw_batches,
    linear_warmup,
    log_steps,
    make_batch_fn,
    resolve_strength_keys,
    train_single,
    train_vectorized,
)
from nalu_keras.regularizers import Sparsity  # noqa: E402

COLUMNS = ("train_loss", "interp_mse", "extrap_mse")
SMALL = dict(validation_size=300, test_size=300)


def build():
    return keras.Sequential(
        [
            keras.Input((100,)),
            NAU(2, w_regularizer=Sparsity(0.0), name="nau"),
            NMU(1, w_regularizer=Sparsity(0.0), name="nmu"),
        ]
    )


def column(result, name):
    return np.array([row[name] for row in result.rows])


def assert_same_runs(a, b, rtol=1e-4, atol=1e-6):
    assert [(r["seed"], r["step"]) for r in a.rows] == [(r["seed"], r["step"]) for r in b.rows]
    for name in COLUMNS:
        np.testing.assert_allclose(column(a, name), column(b, name), rtol=rtol, err_msg=name)
    for x, y in zip(a.trainable, b.trainable):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)
    for x, y in zip(a.non_trainable, b.non_trainable):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)
    assert a.selected_steps == b.selected_steps
    for x, y in zip(a.selected_trainable, b.selected_trainable):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


# --- vectorized == per-seed model.fit ------------------------------------------


@pytest.mark.parametrize("op, learning_rate", [("add", 0.1), ("mul", 0.01)])
def test_vectorized_matches_fit_step_by_step(op, learning_rate):
    # every step logged, a warm-up of both sparsity strengths from step 20 to
    # 60 (so the regularization and its schedule are compared too), and for
    # "add" a learning rate large enough that the Clip projection acts
    task = ArithmeticTask(op, seed=3)
    kwargs = dict(
        log_every=1,
        learning_rate=learning_rate,
        strengths=linear_warmup("sparsity_strength", 1.0, 20, 60),
        **SMALL,
    )
    seeds = [0, 7]
    fast = train_vectorized(build, task, seeds, 50, **kwargs)
    slow = train_single(build, task, seeds, 50, **kwargs)
    assert [r["step"] for r in fast.rows] == list(range(51)) * 2
    assert_same_runs(fast, slow)

    # the constraints keep the weights in range (NAU [-1, 1], NMU [0, 1])
    nau, nmu = fast.trainable
    assert nau.shape == (2, 100, 2) and nmu.shape == (2, 2, 1)
    assert np.all(np.abs(nau) <= 1.0) and np.all((nmu >= 0.0) & (nmu <= 1.0))
    if op == "add":
        at_bounds = np.sum(np.isin(nmu, [0.0, 1.0])) + np.sum(np.abs(nau) == 1.0)
        assert at_bounds > 0, "the projection never acted"
    # the final strengths are those of step 50: (50 − 20) / 40
    for value in fast.non_trainable:
        np.testing.assert_allclose(value, 0.75, rtol=1e-6)


def test_model_without_non_trainable_state():
    def build_nau():
        return keras.Sequential([keras.Input((100,)), NAU(1)])

    task = ArithmeticTask("add")
    fast = train_vectorized(build_nau, task, [0, 1], 8, log_every=4, learning_rate=0.01, **SMALL)
    slow = train_single(build_nau, task, [0, 1], 8, log_every=4, learning_rate=0.01, **SMALL)
    assert fast.non_trainable == [] and slow.non_trainable == []
    assert_same_runs(fast, slow)


def test_result_assigns_to_a_model():
    task = ArithmeticTask("add")
    result = train_vectorized(build, task, [4, 5], 10, log_every=5, **SMALL)
    model = result.assign_to(build(), 5)
    np.testing.assert_array_equal(np.asarray(model.trainable_variables[0].value), result.trainable[0][1])
    x, t = task.sample(300, "U[1,2]", seed=[task.seed, 1])
    mse = float(np.mean((model.predict(x, verbose=0) - t) ** 2))
    assert result.curve(5, "interp_mse")[1][-1] == pytest.approx(mse, rel=1e-4)
    assert 0.0 <= sparsity_error(model) <= 0.5
    assert result.curve(5, "train_loss")[0].tolist() == [0, 5, 10]


def test_selected_step_values_are_those_of_the_best_validation_step():
    from nalu_keras.lab.evaluation import select_best

    task = ArithmeticTask("mul", seed=1)
    kwargs = dict(log_every=3, learning_rate=0.05, **SMALL)
    seeds = [2, 9, 11]
    result = train_vectorized(build, task, seeds, 30, **kwargs)
    assert len(result.selected_steps) == 3
    for i, seed in enumerate(seeds):
        steps, interp = result.curve(seed, "interp_mse")
        _, extrap = result.curve(seed, "extrap_mse")
        chosen = select_best(steps, interp, extrap).step
        assert result.selected_steps[i] == chosen
        # training the same seed for exactly `chosen` steps ends at those values
        again = train_vectorized(build, task, [seed], chosen, **kwargs)
        for kept, final in zip(result.weights(seed, which="selected"), again.weights(seed)):
            np.testing.assert_allclose(kept, final, rtol=1e-6, atol=1e-7)
    # the selection differs from the end of training for at least one seed here,
    # otherwise the comparison above would not test anything beyond "final"
    assert any(step != 30 for step in result.selected_steps)
    model = result.assign_to(build(), seeds[0], which="selected")
    np.testing.assert_array_equal(np.asarray(model.trainable_variables[0].value), result.selected_trainable[0][0])
    with pytest.raises(ValueError, match="which"):
        result.weights(seeds[0], which="best")


def test_selection_tracker_rule():
    from nalu_keras.lab.training.vectorized import SelectionTracker

    tracker = SelectionTracker(3)
    values = lambda v: (lambda: ([np.array([[v], [v], [v]], float)], []))  # noqa: E731
    tracker.update(0, np.array([np.nan, 5.0, np.nan]), values(0))
    tracker.update(10, np.array([np.nan, 5.0, 4.0]), values(10))   # a tie keeps step 0
    tracker.update(20, np.array([3.0, np.nan, 4.0]), values(20))   # NaN never wins
    assert tracker.steps == [20, 0, 10]
    np.testing.assert_array_equal(tracker.trainable[0][:, 0], [20, 0, 10])


# --- schedules inside the compiled program -----------------------------------


def _sparsity(w):
    w = np.abs(np.asarray(w, np.float64))
    return np.mean(np.minimum(w, 1.0 - w))


def test_schedule_changes_the_strength_at_its_step_inside_the_scan():
    task = ArithmeticTask("add")  # losses ~5e3: their float32 differences are precise
    k, steps, lam = 13, 20, 100.0

    def step_schedule(t):
        return {"nau/sparsity_strength": jnp.where(t >= k, lam, 0.0)}

    common = dict(learning_rate=0.01, **SMALL)
    # every step its own call: the losses of steps < k are those of a run
    # without any schedule; at step k the loss gains λ·R(W_nau) exactly
    each = train_vectorized(build, task, [1], steps, log_every=1, strengths=step_schedule, **common)
    plain = train_vectorized(build, task, [1], k, log_every=1, **common)
    with_schedule, without = column(each, "train_loss"), column(plain, "train_loss")
    np.testing.assert_array_equal(with_schedule[:k], without[:k])
    penalty = lam * _sparsity(plain.trainable[0][0])
    assert with_schedule[k] - without[k] == pytest.approx(penalty, rel=1e-3)
    # the strength of the NMU (not named in the schedule) stays 0
    assert each.non_trainable[0][0] == lam and each.non_trainable[1][0] == 0.0

    # the same schedule with all 20 steps in one scan (and in calls of 3
    # steps) gives the same run; switching one step later does not
    whole = train_vectorized(build, task, [1], steps, log_every=steps, strengths=step_schedule, **common)
    split = train_vectorized(
        build, task, [1], steps, log_every=steps, steps_per_call=3, strengths=step_schedule, **common
    )
    np.testing.assert_allclose(whole.trainable[0], each.trainable[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(split.trainable[0], whole.trainable[0])
    assert column(whole, "train_loss")[-1] == pytest.approx(with_schedule[-1], rel=1e-5)

    def later(t):
        return {"nau/sparsity_strength": jnp.where(t >= k + 1, lam, 0.0)}

    shifted = train_vectorized(build, task, [1], steps, log_every=steps, strengths=later, **common)
    assert np.max(np.abs(shifted.trainable[0] - whole.trainable[0])) > 1e-6


def test_strength_keys():
    model = build()
    resolved = resolve_strength_keys(model, ["sparsity_strength", "nmu/sparsity_strength", 0])
    assert resolved == {"sparsity_strength": [0, 1], "nmu/sparsity_strength": [1], 0: [0]}
    with pytest.raises(ValueError, match="names no non-trainable variable"):
        resolve_strength_keys(model, ["nope"])
    with pytest.raises(ValueError, match="not an index"):
        resolve_strength_keys(model, [5])
    warmup = linear_warmup(["a", "b"], 10.0, 100, 200)
    assert float(warmup(50)["a"]) == 0.0
    assert float(warmup(150)["b"]) == pytest.approx(5.0)
    assert float(warmup(10**6)["a"]) == 10.0
    with pytest.raises(ValueError, match="end_step"):
        linear_warmup("a", 1.0, 5, 5)


# --- reproducibility and independence of seeds -----------------------------------


def test_same_seed_same_run_and_seeds_independent():
    task = ArithmeticTask("mul", seed=1)
    kwargs = dict(log_every=10, learning_rate=0.01, **SMALL)
    first = train_vectorized(build, task, [2, 3, 9], 30, **kwargs)
    again = train_vectorized(build, task, [2, 3, 9], 30, **kwargs)
    assert first.rows == again.rows
    for x, y in zip(first.trainable, again.trainable):
        np.testing.assert_array_equal(x, y)

    # different seeds: different initializations, data and curves
    losses = column(first, "train_loss").reshape(3, -1)
    assert len({tuple(row) for row in losses}) == 3
    assert not np.allclose(first.trainable[0][0], first.trainable[0][1])

    # a seed's run does not depend on the other seeds trained with it, nor on
    # how the seeds are chunked
    alone = train_vectorized(build, task, [3], 30, **kwargs)
    chunked = train_vectorized(build, task, [2, 3, 9], 30, seed_chunk=2, **kwargs)
    np.testing.assert_allclose(column(alone, "train_loss"), losses[1], rtol=1e-5)
    np.testing.assert_allclose(alone.trainable[0][0], first.trainable[0][1], rtol=1e-5, atol=1e-7)
    assert [(r["seed"], r["step"]) for r in chunked.rows] == [(r["seed"], r["step"]) for r in first.rows]
    np.testing.assert_allclose(column(chunked, "train_loss"), column(first, "train_loss"), rtol=1e-5)


# --- the data stream -----------------------------------------------------------


def test_batches_reproducible_and_follow_the_task():
    task = ArithmeticTask("mul", seed=5)
    x, t = draw_batches(task, "U[1,2]", seed=0, start=3, count=4, batch_size=64)
    assert x.shape == (4, 64, 100) and t.shape == (4, 64, 1)
    assert x.dtype == np.float32 and t.dtype == np.float32
    again, _ = draw_batches(task, "U[1,2]", seed=0, start=5, count=2, batch_size=64)
    np.testing.assert_array_equal(again, x[2:])  # step 5 is step 5, whatever the block
    assert np.all((x >= 1.0) & (x < 2.0))
    # the target is the task's own (same subsets and op), up to float32 sums
    np.testing.assert_allclose(t, task.target(x.astype(np.float64)), rtol=1e-5)
    other, _ = draw_batches(task, "U[1,2]", seed=1, start=3, count=4, batch_size=64)
    assert not np.any(other == x)
    for op in ("add", "sub", "div", "squared", "root"):
        task_op = ArithmeticTask(op, seed=5)
        x, t = draw_batches(task_op, "U[0.1,0.2]", seed=0, start=0, count=1, batch_size=32)
        expected = task_op.target(x.astype(np.float64))
        np.testing.assert_allclose(t, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rng", ["hash", "threefry"])
def test_batches_are_uniform_and_uncorrelated(rng):
    task = ArithmeticTask("add")
    x, _ = draw_batches(task, "U[0,1]", seed=11, start=0, count=10, batch_size=128, rng=rng)
    u = x.astype(np.float64).ravel()  # 128,000 values
    assert u.mean() == pytest.approx(0.5, abs=0.005)
    assert u.var() == pytest.approx(1 / 12, abs=0.002)
    counts = np.bincount(np.minimum((u * 64).astype(int), 63), minlength=64)
    chi2 = np.sum((counts - len(u) / 64) ** 2 / (len(u) / 64))
    assert chi2 < 120  # 63 degrees of freedom; p ≈ 3e-5
    lag1 = np.corrcoef(u[:-1], u[1:])[0, 1]
    assert abs(lag1) < 0.015
    across_steps = np.corrcoef(x[0].ravel(), x[1].ravel())[0, 1]
    y, _ = draw_batches(task, "U[0,1]", seed=12, start=0, count=1, batch_size=128, rng=rng)
    across_seeds = np.corrcoef(x[0].ravel(), y[0].ravel())[0, 1]
    assert abs(across_steps) < 0.04 and abs(across_seeds) < 0.04


def test_union_ranges():
    task = ArithmeticTask("add")
    value_range = ValueRange.parse("[-6,-2]u[2,6]")
    x, _ = draw_batches(task, value_range, seed=0, start=0, count=5, batch_size=128)
    x = x.ravel()
    assert np.all(((x >= -6) & (x < -2)) | ((x >= 2) & (x < 6)))
    assert np.mean(x < 0) == pytest.approx(0.5, abs=0.01)
    inside = x[x > 0]
    assert inside.mean() == pytest.approx(4.0, abs=0.02)
    three = ValueRange(((0, 1), (10, 11), (20, 30)))
    x, _ = draw_batches(task, three, seed=0, start=0, count=3, batch_size=128)
    parts = np.digitize(x.ravel(), [5, 15])
    np.testing.assert_allclose(np.bincount(parts) / x.size, [1 / 3] * 3, atol=0.01)


def test_arguments_checked():
    task = ArithmeticTask("add")
    with pytest.raises(ValueError, match="rng"):
        make_batch_fn(task, "U[1,2]", rng="mt19937")
    with pytest.raises(ValueError, match="distinct"):
        train_vectorized(build, task, [1, 1], 5)
    with pytest.raises(ValueError, match="ArithmeticTask"):
        train_vectorized(build, "add", [1], 5)
    with pytest.raises(ValueError, match="log_every"):
        train_vectorized(build, task, [1], 5, log_every=0)
    with pytest.raises(ValueError, match="names no non-trainable"):
        train_vectorized(build, task, [1], 5, strengths=lambda t: {"nope": 1.0}, **SMALL)
    assert log_steps(25, 10) == [0, 10, 20, 25]
    assert log_steps(20, 10) == [0, 10, 20]
    assert log_steps(0, 10) == [0]


# --- several processes ---------------------------------------------------------


def test_workers_split_the_seeds_and_give_the_same_result():
    task = ArithmeticTask("mul", seed=2)
    kwargs = dict(log_every=20, learning_rate=0.01, strengths=linear_warmup("sparsity_strength", 1.0, 20, 60), **SMALL)
    seeds = [0, 3, 5]
    one = train_vectorized(build, task, seeds, 60, seed_chunk=2, **kwargs)
    two = train_vectorized(build, task, seeds, 60, seed_chunk=2, workers=2, **kwargs)
    assert two.seeds == (0, 3, 5)
    # the workers run the same groups of seeds as one process: bit for bit equal
    assert_same_runs(one, two, rtol=0, atol=0)
    assert one.rows == two.rows


def test_workers_need_picklable_arguments():
    task = ArithmeticTask("add")
    with pytest.raises(ValueError, match="picklable `build_model`"):
        train_vectorized(lambda: build(), task, [0, 1], 5, workers=2, seed_chunk=1, **SMALL)
    with pytest.raises(ValueError, match="workers"):
        train_vectorized(build, task, [0, 1], 5, workers=0, **SMALL)
