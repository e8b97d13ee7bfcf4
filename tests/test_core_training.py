"""Training smoke test: a NAC learns a + b and extrapolates; training is deterministic.

The task (the NALU paper's static arithmetic task, addition): the input has
100 features drawn from U[1, 2]; a is the sum of one contiguous slice of
them, b the sum of another, and the target is a + b. A single NAC(1) trained
with Adam through `model.fit` must end up close to the exact selection
pattern (W = 1 on both slices, 0 elsewhere), so that it stays accurate on
inputs 10x larger (U[10, 20]), far outside the training range.

Budget: two training runs of 4000 steps each (the second checks determinism);
the whole module takes about 10 s on a 2-core CPU with the JAX backend.
"""

import time

import keras
import numpy as np
import pytest

from nalu_keras import NAC

pytestmark = pytest.mark.filterwarnings(
    # Keras on JAX with numpy 2 (get_weights, np.asarray of variables)
    "ignore:__array__ implementation doesn't accept a copy keyword"
)

INPUT_DIM = 100
SLICE_A = slice(10, 30)  # a = sum of features 10..29
SLICE_B = slice(60, 75)  # b = sum of features 60..74
BATCH = 128
STEPS_PER_EPOCH = 250
EPOCHS = 16  # 4000 steps
SEED = 7


def make_data(rng, n, low, high):
    x = rng.uniform(low, high, size=(n, INPUT_DIM)).astype("float32")
    y = x[:, SLICE_A].sum(axis=1, keepdims=True) + x[:, SLICE_B].sum(axis=1, keepdims=True)
    return x, y


def relative_rmse(model, x, y):
    prediction = model.predict(x, batch_size=len(x), verbose=0)
    return float(np.sqrt(np.mean((prediction - y) ** 2)) / np.sqrt(np.mean(y**2)))


def train(seed):
    """One seeded run; returns (model, per-epoch losses, seconds)."""
    keras.utils.set_random_seed(seed)  # initializers and shuffling
    x, y = make_data(np.random.default_rng(seed), BATCH * STEPS_PER_EPOCH, 1.0, 2.0)
    inputs = keras.Input((INPUT_DIM,))
    model = keras.Model(inputs, NAC(1)(inputs))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.1),
        loss="mse",
        steps_per_execution=STEPS_PER_EPOCH,  # one compiled call per epoch
    )
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=True, verbose=0)
    return model, history.history["loss"], time.perf_counter() - start


@pytest.fixture(scope="module")
def runs():
    """Two runs with the same seed (trained once for the whole module)."""
    first = train(SEED)
    second = train(SEED)
    return first, second


def test_nac_learns_addition_and_extrapolates(runs):
    (model, losses, seconds), _ = runs
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 1e-2 * losses[0]  # the loss went down a lot

    rng = np.random.default_rng(123)
    x_train_range, y_train_range = make_data(rng, 4096, 1.0, 2.0)
    x_far, y_far = make_data(rng, 4096, 10.0, 20.0)  # 10x larger inputs

    # an untrained NAC is nowhere near: the check below is not trivial
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((INPUT_DIM,))
    untrained = keras.Model(inputs, NAC(1)(inputs))
    assert relative_rmse(untrained, x_far, y_far) > 0.5

    assert relative_rmse(model, x_train_range, y_train_range) < 1e-2
    assert relative_rmse(model, x_far, y_far) < 1e-2

    # the learned weights approach the exact selection pattern
    W = model.layers[-1].effective_weights()["W"][:, 0]
    selected = np.zeros(INPUT_DIM, dtype=bool)
    selected[SLICE_A] = selected[SLICE_B] = True
    assert np.all(np.abs(W[selected] - 1.0) < 0.2)
    assert np.all(np.abs(W[~selected]) < 0.15)
    print(f"training time per run: {seconds:.1f} s")


def test_training_is_deterministic(runs):
    (model_1, losses_1, _), (model_2, losses_2, _) = runs
    assert losses_1 == losses_2  # bit-identical loss history
    for w1, w2 in zip(model_1.get_weights(), model_2.get_weights()):
        np.testing.assert_array_equal(w1, w2)
