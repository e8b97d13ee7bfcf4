"""The iNALU training aids: stagnation criterion and re-initialization,
alternating weight / gate updates inside the compiled `fit`, the optimizer
helper. (The saturation regularizer with iNALU is tested in test_inalu.py.)"""

import keras
import numpy as np
import pytest

from nalu_keras.layers.inalu import PHASE_ALL, PHASE_GATE, PHASE_WEIGHTS, iNALU
from nalu_keras.layers.nac import NAC
from nalu_keras.training_aids import (
    AlternatingUpdates,
    ReinitializeOnStagnation,
    inalu_optimizer,
    is_stagnating,
)


def inalu_model(units=1, n_in=2, **kwargs):
    layer = iNALU(units, **kwargs)
    model = keras.Sequential([keras.Input((n_in,)), layer])
    return model, layer


def values(layer):
    return {v.name: keras.ops.convert_to_numpy(v).copy() for v in layer.weights}


# -- the stagnation criterion ---------------------------------------------------------
@pytest.mark.parametrize(
    "losses, expected",
    [
        ([5.0, 5.1, 4.9, 5.0, 5.05, 4.95, 5.0, 5.0], True),  # flat and large
        ([3.0, 3.2, 3.5, 4.0, 4.5, 5.0], True),  # getting worse
        (np.linspace(10.0, 2.0, 10), False),  # clearly decreasing
        ([0.5, 0.5, 0.5, 0.5], False),  # flat but below the threshold
        ([9.0, 6.0, 7.0, 6.0, 8.0], True),  # odd length: older = [9, 6]
        ([9.0, 6.0, 5.0, 4.0, 3.5], False),
    ],
)
def test_is_stagnating(losses, expected):
    assert is_stagnating(losses) is expected


def test_is_stagnating_by_the_formula():
    older, newer = np.array([4.0, 3.0]), np.array([3.0, 2.5, 2.0])
    # mean(older) = 3.5 <= mean(newer) + std(newer) = 2.5 + 0.408: False.
    assert not is_stagnating(np.concatenate([older, newer]))
    assert is_stagnating(np.concatenate([older, newer]) + [0, 0, 1.0, 1.0, 1.0])
    assert not is_stagnating([5.0, 5.0], threshold=10.0)
    with pytest.raises(ValueError, match="at least 2"):
        is_stagnating([3.0])


# -- re-initialization ------------------------------------------------------------------
def drive(callback, model, losses):
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, loss in enumerate(losses):
        callback.on_epoch_end(epoch, {"loss": loss})


def test_reinitialization_fires_on_a_stagnating_history_only():
    model, layer = inalu_model()
    before = values(layer)
    quiet = ReinitializeOnStagnation(history_length=6, seed=0)
    drive(quiet, model, np.linspace(12.0, 3.0, 12))
    assert quiet.reinitializations == []
    for name, value in values(layer).items():
        np.testing.assert_array_equal(value, before[name])

    fires = ReinitializeOnStagnation(history_length=6, seed=0)
    drive(fires, model, [6.5, 6.4, 6.6, 6.5, 6.45, 6.55, 6.5])
    assert fires.reinitializations == [5]  # checked after epochs 6, 12, ...
    after = values(layer)
    for v in layer.trainable_weights:
        assert not np.array_equal(after[v.name], before[v.name])
        assert np.all(np.abs(after[v.name]) <= 2.0)
    assert after["update_phase"] == before["update_phase"]
    assert fires.history == [6.5]  # cleared at the re-initialization


def test_reinitialization_inside_fit_reaches_the_compiled_step():
    # A learning rate of 0 keeps the loss exactly constant (and > 1) until the
    # callback re-draws the weights; the next epoch's loss shows the new ones.
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(1, 2, size=(64, 2)).astype("float32")
    model, layer = inalu_model()
    model.compile(keras.optimizers.SGD(0.0), "mse")
    callback = ReinitializeOnStagnation(history_length=4, seed=1)
    history = model.fit(x, np.full((64, 1), 50.0), batch_size=32, epochs=6, verbose=0,
                        callbacks=[callback])
    losses = history.history["loss"]
    assert callback.reinitializations == [3]
    np.testing.assert_allclose(losses[:4], losses[0], rtol=1e-6)
    assert abs(losses[4] - losses[3]) > 1e-3 * losses[3]
    assert all(np.all(np.abs(keras.ops.convert_to_numpy(v)) <= 2) for v in layer.trainable_weights)


def test_reinitialization_options_are_validated():
    with pytest.raises(ValueError, match="minval"):
        ReinitializeOnStagnation(minval=2.0, maxval=-2.0)
    with pytest.raises(ValueError, match="history_length"):
        ReinitializeOnStagnation(history_length=1)
    with pytest.raises(ValueError, match="check_every"):
        ReinitializeOnStagnation(check_every=0)
    model = keras.Sequential([keras.Input((2,)), NAC(1)])
    with pytest.raises(ValueError, match="found no iNALU"):
        drive(ReinitializeOnStagnation(history_length=2), model, [5.0, 5.0])
    # Other units can be named explicitly.
    callback = ReinitializeOnStagnation(history_length=2, layers=[model.layers[-1]], seed=0)
    drive(callback, model, [5.0, 5.0])
    assert callback.reinitializations == [1]


# -- alternating updates -------------------------------------------------------------------
class Recorder(keras.callbacks.Callback):
    """Snapshots of the layer's weights before training and after each batch.

    On JAX it reads the trainer's state (`_jax_state`) through `self._model`
    (the `model` property would sync the state back into the variables), so
    the training runs as it does without this recorder: `AlternatingUpdates`
    has to synchronize for its phase switches to reach the compiled step.
    """

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.snapshots = []
        self.phases = []

    def on_train_begin(self, logs=None):
        self.snapshots.append(values(self.layer))

    def _current(self):
        model = self._model
        state = getattr(model, "_jax_state", None)
        if not state or getattr(model, "_jax_state_synced", True):
            return values(self.layer)
        by_variable = dict(zip(map(id, model.trainable_variables), state["trainable_variables"]))
        by_variable.update(
            zip(map(id, model.non_trainable_variables), state["non_trainable_variables"])
        )
        return {v.name: np.array(by_variable[id(v)]) for v in self.layer.weights}

    def on_train_batch_end(self, batch, logs=None):
        snapshot = self._current()
        self.phases.append(float(snapshot["update_phase"]))
        self.snapshots.append(snapshot)


def fit_and_record(callbacks, epochs=2):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(1, 2, size=(7 * 16, 2)).astype("float32")
    model, layer = inalu_model()
    model.compile(inalu_optimizer(), "mse")
    recorder = Recorder(layer)
    model.fit(x, x[:, :1] * x[:, 1:], batch_size=16, epochs=epochs, shuffle=False,
              verbose=0, callbacks=callbacks + [recorder])
    return layer, recorder


def changed(before, after, names):
    return [not np.array_equal(before[n], after[n]) for n in names]


def test_alternating_updates_in_compiled_fit():
    alternate = AlternatingUpdates(weight_steps=8, gate_steps=2)
    layer, recorder = fit_and_record([alternate])
    paths = ["w_hat", "m_hat", "w_hat_mul", "m_hat_mul"]
    expected_phases = [PHASE_WEIGHTS] * 8 + [PHASE_GATE] * 2 + [PHASE_WEIGHTS] * 4
    assert recorder.phases == expected_phases  # 14 batches over 2 epochs
    for step, phase in enumerate(expected_phases):
        before, after = recorder.snapshots[step], recorder.snapshots[step + 1]
        if phase == PHASE_WEIGHTS:
            assert changed(before, after, ["g"]) == [False], step
            assert all(changed(before, after, paths)), step
        else:
            assert changed(before, after, paths) == [False] * 4, step
            assert changed(before, after, ["g"]) == [True], step
    assert float(keras.ops.convert_to_numpy(layer.update_phase)) == PHASE_ALL
    assert alternate.phase_for(10) == PHASE_WEIGHTS and alternate.phase_for(19) == PHASE_GATE


def test_without_alternation_everything_moves_every_batch():
    # The control for the test above: the recorder does see gate updates.
    _, recorder = fit_and_record([], epochs=1)
    for before, after in zip(recorder.snapshots, recorder.snapshots[1:]):
        assert all(changed(before, after, ["w_hat", "m_hat", "w_hat_mul", "m_hat_mul", "g"]))


def test_alternating_updates_are_validated():
    with pytest.raises(ValueError, match="weight_steps"):
        AlternatingUpdates(weight_steps=0)
    with pytest.raises(ValueError, match="gate_steps"):
        AlternatingUpdates(gate_steps=1.5)


# -- optimizer ------------------------------------------------------------------------------
def test_inalu_optimizer_is_rmsprop_with_elementwise_clipping():
    optimizer = inalu_optimizer()
    assert isinstance(optimizer, keras.optimizers.RMSprop)
    config = optimizer.get_config()
    assert config["clipvalue"] == 0.1 and config["clipnorm"] is None
    np.testing.assert_allclose(config["learning_rate"], 1e-2)
    assert inalu_optimizer(learning_rate=1e-3, rho=0.8).get_config()["rho"] == 0.8
