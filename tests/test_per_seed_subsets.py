"""Per-seed subsets: the data seed is the run seed, as in the reference.

With `subsets="per-seed"` seed s learns `task.with_seed(s)`: its subsets
start at an offset drawn from s. The compiled program draws every seed's
targets with one function (the offset is an input), the reference path
(`model.fit`) follows the same definition, and the fixed evaluation sets
share their inputs while each seed scores against its own targets.
"""

import keras
import numpy as np
import pytest

from nalu_keras.lab.experiments import benchmark
from nalu_keras.lab.tasks.arithmetic import ArithmeticTask

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="the vectorized trainer needs the JAX backend"
)

from nalu_keras import NAU, NMU  # noqa: E402
from nalu_keras.lab.training import (  # noqa: E402
    draw_batches,
    evaluation_sets,
    seed_tasks,
    train_single,
    train_vectorized,
)

SMALL = dict(validation_size=300, test_size=300)
TASK = ArithmeticTask("mul")


def build():
    return keras.Sequential([keras.Input((100,)), NAU(2), NMU(1)])


def seeds_with_other_offsets(task, count):
    """`count` seeds whose offsets differ from the task's and each other's."""
    seeds, offsets = [], {task.offset}
    for seed in range(1000):
        offset = task.with_seed(seed).offset
        if offset not in offsets:
            seeds.append(seed)
            offsets.add(offset)
        if len(seeds) == count:
            return seeds
    raise AssertionError("no such seeds")


def test_with_seed_moves_the_subsets_within_the_input():
    offsets = [TASK.with_seed(s).offset for s in range(400)]
    span = TASK.span  # 25 + 25 − 12 = 38 inputs
    assert span == 38
    assert min(offsets) == 0 and max(offsets) == 100 - span  # every offset 0 … 62 occurs
    assert len(set(offsets)) == 100 - span + 1
    moved = TASK.with_seed(seeds_with_other_offsets(TASK, 1)[0])
    assert (moved.op, moved.input_size, moved.subset_size, moved.overlap_size) == ("mul", 100, 25, 12)


def test_seed_tasks():
    assert seed_tasks(TASK, [0, 1, 2]) == [TASK] * 3
    assert seed_tasks(TASK, [4, 9], "per-seed") == [TASK.with_seed(4), TASK.with_seed(9)]
    with pytest.raises(ValueError, match="subsets"):
        seed_tasks(TASK, [0], "each")
    with pytest.raises(ValueError, match="subsets"):
        train_vectorized(build, TASK, [0], 2, subsets="per_seed", **SMALL)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "squared", "root"])
def test_per_seed_batches_follow_the_seeds_task(op):
    task = ArithmeticTask(op, seed=3)
    for seed in [0] + seeds_with_other_offsets(task, 2):
        x, t = draw_batches(task, "U[1,2]", seed, start=4, count=2, batch_size=32, subsets="per-seed")
        shared_x, shared_t = draw_batches(task, "U[1,2]", seed, start=4, count=2, batch_size=32)
        np.testing.assert_array_equal(x, shared_x)  # the inputs do not depend on the subsets
        own = task.with_seed(seed)
        np.testing.assert_allclose(t, own.target(x.astype(np.float64)), rtol=1e-5, atol=1e-4)
        if own.offset != task.offset:
            assert not np.allclose(t, shared_t, rtol=1e-3)


def test_evaluation_sets_share_inputs_and_give_each_seed_its_targets():
    seeds = [0] + seeds_with_other_offsets(TASK, 2)
    tasks = seed_tasks(TASK, seeds, "per-seed")
    (x_val, t_val), (x_test, t_test) = evaluation_sets(TASK, "U[1,2]", "U[2,6]", 50, 40, tasks=tasks)
    (shared_x_val, _), (shared_x_test, _) = evaluation_sets(TASK, "U[1,2]", "U[2,6]", 50, 40)
    np.testing.assert_array_equal(x_val, shared_x_val)
    np.testing.assert_array_equal(x_test, shared_x_test)
    assert t_val.shape == (3, 50, 1) and t_test.shape == (3, 40, 1)
    for i, own in enumerate(tasks):
        expected = own.sample(40, "U[2,6]", seed=[TASK.seed, 2])[1]
        np.testing.assert_array_equal(t_test[i], expected)
    with pytest.raises(ValueError, match="input_size"):
        evaluation_sets(TASK, "U[1,2]", "U[2,6]", 5, 5, tasks=[ArithmeticTask("mul", input_size=50)])


def test_vectorized_matches_fit_with_per_seed_subsets():
    seeds = [0] + seeds_with_other_offsets(TASK, 2)
    kwargs = dict(log_every=10, learning_rate=0.01, subsets="per-seed", **SMALL)
    fast = train_vectorized(build, TASK, seeds, 40, **kwargs)
    slow = train_single(build, TASK, seeds, 40, **kwargs)
    assert [(r["seed"], r["step"]) for r in fast.rows] == [(r["seed"], r["step"]) for r in slow.rows]
    for name in ("train_loss", "interp_mse", "extrap_mse"):
        np.testing.assert_allclose([r[name] for r in fast.rows], [r[name] for r in slow.rows], rtol=1e-4)
    for a, b in zip(fast.trainable, slow.trainable):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_each_seed_is_trained_and_scored_on_its_own_subsets():
    moved = seeds_with_other_offsets(TASK, 2)
    seeds = [0] + moved
    kwargs = dict(log_every=20, learning_rate=0.01, **SMALL)
    per_seed = train_vectorized(build, TASK, seeds, 40, subsets="per-seed", **kwargs)
    shared = train_vectorized(build, TASK, seeds, 40, **kwargs)
    # seed 0 has the task's offset: the same run either way (up to rounding)
    np.testing.assert_allclose(per_seed.curve(0, "extrap_mse")[1], shared.curve(0, "extrap_mse")[1], rtol=1e-5)
    for seed in moved:
        # trained on other targets: other weights
        assert not np.allclose(per_seed.weights(seed)[0], shared.weights(seed)[0], rtol=1e-3)
        # the logged MSE is that of the seed's own task on the shared inputs
        model = per_seed.assign_to(build(), seed)
        own = TASK.with_seed(seed)
        for size_range, seed_tail, column in (("U[1,2]", 1, "interp_mse"), ("U[2,6]", 2, "extrap_mse")):
            x, t = own.sample(300, size_range, seed=[TASK.seed, seed_tail])
            mse = float(np.mean((model.predict(x, verbose=0).astype(np.float64) - t) ** 2))
            assert per_seed.curve(seed, column)[1][-1] == pytest.approx(mse, rel=1e-4)


def test_workers_give_the_same_per_seed_result():
    seeds = [0] + seeds_with_other_offsets(TASK, 2)
    kwargs = dict(log_every=20, learning_rate=0.01, subsets="per-seed", seed_chunk=2, **SMALL)
    one = train_vectorized(build, TASK, seeds, 40, **kwargs)
    two = train_vectorized(build, TASK, seeds, 40, workers=2, **kwargs)
    assert one.rows == two.rows


def test_benchmark_presets_choose_the_subsets():
    assert benchmark.BenchConfig().subsets == "per-seed"
    assert benchmark.BenchConfig(preset="library").subsets == "shared"
    assert benchmark.BenchConfig(suite="primer").subsets == "shared"
    config = benchmark.BenchConfig(preset="reference", subsets="shared")
    assert config.subsets == "shared" and config.settings()["subsets"] == "shared"
    assert benchmark.BenchConfig().settings()["subsets"] == "per-seed"
    with pytest.raises(ValueError, match="subsets"):
        benchmark.BenchConfig(subsets="moving")


def test_bench_runs_use_the_configured_subsets(tmp_path):
    moved = seeds_with_other_offsets(ArithmeticTask("add"), 1)[0]
    rows = {}
    for subsets in ("per-seed", "shared"):
        config = benchmark.BenchConfig(units=("NAU",), ops=("add",), seeds=moved + 1, steps=30,
                                       log_every=10, eval_size=200, threshold_samples=2000,
                                       subsets=subsets)
        out = tmp_path / subsets
        out.mkdir()
        runs, _ = benchmark.run_configuration(config, "NAU", "add", config.ranges[0], str(out))
        rows[subsets] = {int(r["seed"]): float(r["final_extrap_mse"]) for r in runs}
    assert rows["per-seed"][0] == pytest.approx(rows["shared"][0], rel=1e-5)
    assert rows["per-seed"][moved] != pytest.approx(rows["shared"][moved], rel=1e-3)


def test_cli_subsets_flag():
    from nalu_keras.lab import cli

    parser = cli.build_parser()
    assert cli.bench_config(parser.parse_args(["bench"])).subsets == "per-seed"
    assert cli.bench_config(parser.parse_args(["bench", "--subsets", "shared"])).subsets == "shared"
    assert cli.bench_config(parser.parse_args(["bench", "--preset", "library"])).subsets == "shared"
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "--subsets", "moving"])
