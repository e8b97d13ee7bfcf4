"""The static arithmetic task generator (pure numpy)."""

import numpy as np
import pytest

from nalu_keras.lab.tasks import ArithmeticTask, ValueRange


def test_subset_and_overlap_arithmetic_matches_madsen():
    task = ArithmeticTask("add", input_size=100, subset_ratio=0.25, overlap_ratio=0.5, seed=7)
    assert task.subset_size == 25
    assert task.overlap_size == 12
    a, b = task.subsets
    k = task.offset
    assert (a.start, a.stop) == (k, k + 25)
    assert (b.start, b.stop) == (k + 13, k + 38)
    assert 0 <= k and b.stop <= 100
    # the two subsets share exactly `overlap` positions
    assert len(set(range(a.start, a.stop)) & set(range(b.start, b.stop))) == 12


def test_offset_depends_on_the_task_seed_only():
    offsets = {ArithmeticTask("mul", seed=s).offset for s in range(30)}
    assert len(offsets) > 1
    assert ArithmeticTask("mul", seed=3).offset == ArithmeticTask("add", seed=3).offset


@pytest.mark.parametrize(
    "op, expected",
    [
        ("add", lambda a, b: a + b),
        ("sub", lambda a, b: a - b),
        ("mul", lambda a, b: a * b),
        ("div", lambda a, b: a / b),
        ("squared", lambda a, b: a * a),
        ("root", lambda a, b: np.sqrt(a)),
    ],
)
def test_targets_are_op_of_the_two_sums(op, expected):
    task = ArithmeticTask(op, input_size=10, subset_ratio=0.3, overlap_ratio=0.34, seed=1)
    x, t = task.sample(64, "U[1,2]", seed=0, dtype=np.float64)
    a_slice, b_slice = task.subsets
    a = x[:, a_slice].sum(axis=1)
    b = x[:, b_slice].sum(axis=1)
    assert x.shape == (64, 10) and t.shape == (64, 1)
    np.testing.assert_allclose(t[:, 0], expected(a, b), rtol=1e-12)


def test_sampling_is_deterministic_per_seed():
    task = ArithmeticTask("mul", seed=0)
    x1, t1 = task.sample(100, "U[1,2]", seed=5)
    x2, t2 = task.sample(100, "U[1,2]", seed=5)
    x3, _ = task.sample(100, "U[1,2]", seed=6)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(t1, t2)
    assert not np.array_equal(x1, x3)


def test_union_range_samples_both_parts_and_nothing_between():
    values = ValueRange.parse("[-6,-2]u[2,6]").sample(np.random.default_rng(0), (20000,))
    assert values.min() >= -6 and values.max() <= 6
    assert not np.any((values > -2) & (values < 2))
    assert 0.45 < np.mean(values > 0) < 0.55


def test_extrapolation_range_lies_outside_interpolation_range():
    task = ArithmeticTask("add", seed=0)
    x_int, _ = task.sample(1000, "U[1,2]", seed=0)
    x_ext, _ = task.sample(1000, "U[2,6]", seed=1)
    assert x_int.min() >= 1 and x_int.max() <= 2
    assert x_ext.min() >= 2 and x_ext.max() <= 6


@pytest.mark.parametrize("text", ["U[1,2]", "[1, 2]", "u[1,2]"])
def test_parse_single_interval(text):
    assert ValueRange.parse(text).parts == ((1.0, 2.0),)


def test_parse_union_spellings_agree():
    expected = ((-6.0, -2.0), (2.0, 6.0))
    for text in ["[-6,-2]u[2,6]", "U[-6,-2]∪U[2,6]", "U[-6,-2]|U[2,6]"]:
        assert ValueRange.parse(text).parts == expected


@pytest.mark.parametrize("text", ["", "U[2,1]", "U[1]", "[a,b]", "U[1,inf]"])
def test_bad_ranges_are_rejected(text):
    with pytest.raises(ValueError):
        ValueRange.parse(text)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"op": "pow"},
        {"op": "add", "input_size": 0},
        {"op": "add", "subset_ratio": 0.0},
        {"op": "add", "overlap_ratio": 1.5},
        {"op": "add", "input_size": 4, "subset_ratio": 0.1},
        {"op": "add", "input_size": 10, "subset_ratio": 0.9, "overlap_ratio": 0.0},
    ],
)
def test_bad_task_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        ArithmeticTask(**kwargs)


def test_sequences_accumulate_a_and_b_over_time():
    task = ArithmeticTask("mul", input_size=10, subset_ratio=0.3, overlap_ratio=0.34, seed=2)
    x, t = task.sample_sequences(16, 7, "U[1,2]", seed=3, dtype=np.float64)
    assert x.shape == (16, 7, 10) and t.shape == (16, 1)
    a_slice, b_slice = task.subsets
    a = x[:, :, a_slice].sum(axis=(1, 2))
    b = x[:, :, b_slice].sum(axis=(1, 2))
    np.testing.assert_allclose(t[:, 0], a * b, rtol=1e-12)
    x2, t2 = task.sample_sequences(16, 7, "U[1,2]", seed=3, dtype=np.float64)
    np.testing.assert_array_equal(x, x2)


def test_longer_sequences_give_proportionally_larger_sums():
    task = ArithmeticTask("add", input_size=10, seed=0)
    _, short = task.sample_sequences(2000, 10, "U[1,2]", seed=0)
    _, long = task.sample_sequences(200, 1000, "U[1,2]", seed=1)
    assert short.max() < long.min()  # extrapolation targets lie outside the training ones
    np.testing.assert_allclose(long.mean() / short.mean(), 100, rtol=0.01)


@pytest.mark.parametrize("length", [0, -1, 2.5])
def test_bad_sequence_length_is_rejected(length):
    with pytest.raises(ValueError):
        ArithmeticTask("add", input_size=10).sample_sequences(2, length, "U[1,2]", seed=0)


def test_identity_task_samples_and_grid():
    from nalu_keras.lab.tasks import identity

    x, t = identity.sample(500, seed=4)
    assert x.shape == (500, 1) and np.array_equal(x, t)
    assert x.min() >= -5 and x.max() <= 5 and x.min() < -4.5 and x.max() > 4.5
    assert np.array_equal(identity.sample(500, seed=4)[0], x)
    grid = identity.grid()
    assert grid.shape == (401, 1) and grid[0, 0] == -20 and grid[-1, 0] == 20
    with pytest.raises(ValueError):
        identity.grid(1.0, 1.0)
