"""Schedules that change a regularizer's strength during a compiled `fit`.

The setup makes the loss of every step predictable: the learning rate is 0
(the weights never move) and every batch holds the same rows, so each step's
loss is the same mse c plus strength(t) · p, with p the fixed penalty. Keras
logs, after each batch, the mean loss of the epoch so far; the loss of step k
of an epoch is recovered as (k + 1)·M_k − k·M_{k−1}.

The loss is checked in runs where nothing but the schedule touches the model
(reading `callback.model` on JAX writes the training state back, which a
recorder must not do for the schedule); the strength at each batch end is
recorded in separate runs.

On the JAX backend, Keras' compiled train step carries only the model's own
variables; a control test shows that an untracked strength variable is
frozen in, which is what the schedules guard against.
"""

import keras
import numpy as np
import pytest

from nalu_keras.callbacks import (
    LinearWarmupSchedule,
    LossTriggerSchedule,
    StepMultiplySchedule,
    StrengthSchedule,
)
from nalu_keras.layers.nac import NAC
from nalu_keras.layers.nalu import NALU
from nalu_keras.layers.nau_nmu import NAU
from nalu_keras.regularizers import L1, Sparsity

W = np.array([[0.3], [0.6]], "float32")
PENALTY = {"sparsity": np.mean([0.3, 0.4]), "l1": 0.9}
MSE = 0.9**2  # x = (1, 1), y = 0


class LossLog(keras.callbacks.Callback):
    """Records logs['loss'] after each batch, without touching the model."""

    def __init__(self):
        super().__init__()
        self.means = []  # per epoch, a list of running means

    def on_epoch_begin(self, epoch, logs=None):
        self.means.append([])

    def on_train_batch_end(self, batch, logs=None):
        self.means[-1].append(float(logs["loss"]))

    def step_losses(self):
        out = []
        for means in self.means:
            previous = 0.0
            for k, mean in enumerate(means):
                out.append((k + 1) * mean - k * previous)
                previous = mean
        return np.array(out)


class StrengthLog(keras.callbacks.Callback):
    """Records the strength variable after each batch (syncs the JAX state)."""

    def __init__(self, regularizer):
        super().__init__()
        self.regularizer = regularizer
        self.values = []

    def on_train_batch_end(self, batch, logs=None):
        self.model  # noqa: B018  (JAX: write the training state back)
        self.values.append(self.regularizer.strength)


def make_model(regularizer):
    layer = NAU(1, w_regularizer=regularizer)
    model = keras.Sequential([keras.Input((2,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", jit_compile=True)
    layer.w.assign(W)
    return model


def run(model, callbacks, steps_per_epoch=6, epochs=2):
    batch = 4
    x = np.ones((batch * steps_per_epoch, 2), "float32")
    y = np.zeros((batch * steps_per_epoch, 1), "float32")
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=False,
              callbacks=callbacks)


def check_schedule(make_regularizer, make_schedule, expected, penalty,
                   model_factory=make_model, mse=MSE, **run_kwargs):
    # 1) the loss of every step includes the penalty at the expected strength
    reg = make_regularizer()
    model = model_factory(reg)
    assert model.jit_compile
    log = LossLog()
    run(model, [make_schedule(reg), log], **run_kwargs)
    np.testing.assert_allclose(
        log.step_losses(), mse + np.asarray(expected) * penalty, rtol=1e-5, atol=1e-6
    )
    # 2) the strength variable holds the expected value after each batch
    reg = make_regularizer()
    model = model_factory(reg)
    record = StrengthLog(reg)
    run(model, [make_schedule(reg), record], **run_kwargs)
    np.testing.assert_allclose(record.values, expected, rtol=1e-6, atol=1e-12)


def test_linear_warmup_in_compiled_fit():
    expected = [min(max((t - 2) / 6, 0.0), 1.0) * 0.8 for t in range(12)]
    check_schedule(
        lambda: Sparsity(0.0),
        lambda reg: LinearWarmupSchedule(reg, 0.8, start_step=2, end_step=8),
        expected,
        PENALTY["sparsity"],
    )


def make_nac_family_model(cls, **kwargs):
    """A NAC or NALU (gate fixed at 1) whose output is x @ tanh(W); the
    regularizer goes through the generic `w_hat_regularizer` argument."""

    def factory(regularizer):
        layer = cls(1, w_hat_regularizer=regularizer, **kwargs)
        model = keras.Sequential([keras.Input((2,)), layer])
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", jit_compile=True)
        layer.w_hat.assign(W)  # the penalties of W above, now on Ŵ
        layer.m_hat.assign(np.full((2, 1), 30.0, "float32"))  # σ(M̂) = 1
        if cls is NALU:
            layer.g.assign([30.0])  # σ(30) = 1: the additive path
        return model

    return factory


NAC_MSE = float(np.sum(np.tanh(W.astype(np.float64)))) ** 2


def test_linear_warmup_reaches_a_nac_regularizer_in_compiled_fit():
    # The regularizer is given through the generic `*_regularizer` argument
    # of ArithmeticUnit; its strength must be tracked for the JAX step.
    expected = [min(max((t - 2) / 6, 0.0), 1.0) * 0.8 for t in range(12)]
    check_schedule(
        lambda: Sparsity(0.0),
        lambda reg: LinearWarmupSchedule(reg, 0.8, start_step=2, end_step=8),
        expected,
        PENALTY["sparsity"],
        model_factory=make_nac_family_model(NAC),
        mse=NAC_MSE,
    )


def test_step_multiply_reaches_a_nalu_regularizer_in_compiled_fit():
    expected = [1e-3] * 3 + [1e-2] * 3 + [1e-1] * 6
    check_schedule(
        lambda: L1(0.0),
        lambda reg: StepMultiplySchedule(reg, start=1e-3, end=1e-1, every=3),
        expected,
        PENALTY["l1"],
        model_factory=make_nac_family_model(NALU, gate="independent"),
        mse=NAC_MSE,
    )


def test_step_multiply_in_compiled_fit():
    expected = [1e-3] * 3 + [1e-2] * 3 + [1e-1] * 6
    check_schedule(
        lambda: L1(0.0),
        lambda reg: StepMultiplySchedule(reg, start=1e-3, end=1e-1, every=3),
        expected,
        PENALTY["l1"],
    )


@pytest.mark.parametrize(
    "threshold, latch, expected",
    [
        # loss c = 0.81 < 2 always: on from step 3 (after the 3 warm-up steps)
        (2.0, False, [0, 0, 0, 1, 1, 1, 1, 1]),
        # c < 1 < c + penalty: the penalty switches itself off again ...
        (1.0, False, [0, 0, 0, 1, 0, 1, 0, 1]),
        # ... unless latched
        (1.0, True, [0, 0, 0, 1, 1, 1, 1, 1]),
        # the loss never gets below the level
        (0.5, False, [0] * 8),
    ],
)
def test_loss_trigger_in_compiled_fit(threshold, latch, expected):
    # one step per epoch, so the logged loss is the step's loss
    strength = 1.0
    check_schedule(
        lambda: L1(0.0),
        lambda reg: LossTriggerSchedule(
            reg, strength, threshold=threshold, warmup_steps=3, latch=latch
        ),
        np.asarray(expected, float) * strength,
        PENALTY["l1"],
        steps_per_epoch=1,
        epochs=8,
    )


def test_schedule_continues_across_fit_calls():
    reg = Sparsity(0.0)
    model = make_model(reg)
    schedule = LinearWarmupSchedule(reg, 1.0, start_step=0, end_step=10)
    record = StrengthLog(reg)
    run(model, [schedule, record], steps_per_epoch=4, epochs=1)
    run(model, [schedule, record], steps_per_epoch=4, epochs=1)
    np.testing.assert_allclose(record.values, [t / 10 for t in range(8)], rtol=1e-6)
    assert schedule.step == 8


def test_several_targets_get_the_same_value():
    a, b = Sparsity(0.0), Sparsity(0.0)
    layers = [NAU(2, w_regularizer=a), NAU(1, w_regularizer=b)]
    model = keras.Sequential([keras.Input((2,)), *layers])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    run(model, [StepMultiplySchedule([a, b], start=0.5, end=0.5)], steps_per_epoch=2, epochs=1)
    assert a.strength == b.strength == 0.5


def test_untracked_strength_is_refused():
    reg = Sparsity(0.0)
    layer = keras.layers.Dense(1, use_bias=False, kernel_regularizer=reg)
    model = keras.Sequential([keras.Input((2,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    with pytest.raises(ValueError, match="not tracked by the model"):
        run(model, [LinearWarmupSchedule(reg, 1.0, 0, 4)], steps_per_epoch=2, epochs=1)


def test_control_untracked_variable_is_frozen_in_the_compiled_jax_step():
    # Why the tracking matters: the same regularizer on a plain Dense layer
    # (strength not tracked), driven by hand, does not reach the loss.
    if keras.backend.backend() != "jax":
        pytest.skip("JAX-specific behaviour of Keras' compiled train step")

    class Ramp(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.model  # noqa: B018
            reg.assign_strength(float(batch))

    reg = Sparsity(0.0)
    layer = keras.layers.Dense(1, use_bias=False, kernel_regularizer=reg)
    model = keras.Sequential([keras.Input((2,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", jit_compile=True)
    layer.kernel.assign(W)
    log = LossLog()
    run(model, [Ramp(), log], steps_per_epoch=4, epochs=1)
    assert reg.strength == 3.0
    np.testing.assert_allclose(log.step_losses(), MSE, rtol=1e-5)  # penalty never seen


def test_schedule_formulas():
    warm = LinearWarmupSchedule(Sparsity(), 10.0, start_step=1000, end_step=2000)
    values = [warm.strength_at(t) for t in (0, 1000, 1500, 2000, 10**7)]
    assert values == [0, 0, 5.0, 10.0, 10.0]
    mult = StepMultiplySchedule(L1(), start=1e-7, end=1e-4, every=10_000)
    values = [mult.strength_at(t) for t in (0, 9_999, 10_000, 25_000, 30_000, 10**9)]
    np.testing.assert_allclose(values, [1e-7, 1e-7, 1e-6, 1e-5, 1e-4, 1e-4], rtol=1e-12)
    assert max(values) == 1e-4


@pytest.mark.parametrize(
    "make, bad",
    [
        (lambda: LinearWarmupSchedule(Sparsity(), -1.0, 0, 10), "-1.0"),
        (lambda: LinearWarmupSchedule(Sparsity(), 1.0, 10, 10), "end_step=10"),
        (lambda: LinearWarmupSchedule(Sparsity(), 1.0, 0.5, 10), "0.5"),
        (lambda: LinearWarmupSchedule("l1", 1.0, 0, 10), "'l1'"),
        (lambda: LinearWarmupSchedule([], 1.0, 0, 10), "at least one"),
        (lambda: StepMultiplySchedule(L1(), start=0.0, end=1.0), "0.0"),
        (lambda: StepMultiplySchedule(L1(), start=1.0, end=0.1), "end=0.1"),
        (lambda: StepMultiplySchedule(L1(), 1e-3, 1e-1, every=0), "0"),
        (lambda: StepMultiplySchedule(L1(), 1e-3, 1e-1, factor=1.0), "1.0"),
        (lambda: LossTriggerSchedule(L1(), threshold=float("nan")), "nan"),
        (lambda: LossTriggerSchedule(L1(), warmup_steps=-3), "-3"),
        (lambda: LossTriggerSchedule(L1(), monitor=""), "''"),
        (lambda: LossTriggerSchedule(L1(), latch="yes"), "'yes'"),
        (lambda: StrengthSchedule(keras.Variable(np.zeros(2))), "scalar"),
    ],
)
def test_validation(make, bad):
    with pytest.raises(ValueError, match=bad.replace(".", r"\.")):
        make()
