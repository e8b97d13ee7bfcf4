"""Seeded statistical checks of the Madsen & Johansen protocol.

The larger ones are marked slow: run them with `pytest -m slow`.
"""

import keras
import pytest

import nalu_keras as nk
from nalu_keras.lab.evaluation import is_success, select_best, solved_at, success_threshold
from nalu_keras.lab.tasks import ArithmeticTask
from nalu_keras.lab.training import linear_warmup, train_vectorized


def successes(op, seeds):
    """Train Madsen & Johansen's NAU model (NAU 100 -> 2 -> 1, sparsity
    warm-up 0.01 from 5e3 to 5e4 steps) on `op`, U[1,2] -> U[2,6], and
    judge each seed by their criterion: the test MSE at the best validation
    step is below the threshold of the ε-perturbed solution. Returns
    {seed: (success, solved_at)}."""
    task = ArithmeticTask(op, seed=0)

    def build():
        return keras.Sequential([
            keras.Input((100,)),
            nk.NAU(2, w_regularizer=nk.regularizers.Sparsity(0.0)),
            nk.NAU(1, w_regularizer=nk.regularizers.Sparsity(0.0)),
        ])

    result = train_vectorized(
        build, task, seeds=seeds, steps=50_000, log_every=1000,
        strengths=linear_warmup("sparsity_strength", 0.01, 5_000, 50_000),
    )
    threshold = success_threshold(task, "U[2,6]", samples=200_000)
    outcome = {}
    for seed in seeds:
        rows = [r for r in result.rows if r["seed"] == seed]
        steps = [r["step"] for r in rows]
        extrap = [r["extrap_mse"] for r in rows]
        best = select_best(steps, [r["interp_mse"] for r in rows], extrap)
        outcome[seed] = (is_success(best.extrapolation_mse, threshold),
                         solved_at(steps, extrap, threshold))
    return outcome


def test_nau_solves_addition_on_every_one_of_five_seeds():
    outcome = successes("add", range(5))
    assert all(success and solved is not None for success, solved in outcome.values()), outcome


@pytest.mark.slow
@pytest.mark.parametrize("op", ["add", "sub"])
def test_nau_solves_addition_and_subtraction_on_25_seeds(op):
    """Madsen & Johansen report 100 % success for the NAU on + and − (100
    seeds); here 25 seeds with the compressed schedule must all succeed."""
    outcome = successes(op, range(100, 125))
    failed = [seed for seed, (success, _) in outcome.items() if not success]
    assert not failed, failed
