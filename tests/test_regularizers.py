"""Regularizers (values, strength variable, tracking, serialization) and Clip."""

import os

import keras
import numpy as np
import pytest

from nalu_keras import ArithmeticCell
from nalu_keras.constraints import Clip
from nalu_keras.layers.golden import GNALU, SigmoidMulNAC
from nalu_keras.layers.inalu import iNALU
from nalu_keras.layers.nac import NAC, MulNAC
from nalu_keras.layers.nalu import NALU
from nalu_keras.layers.nau_nmu import NAU, NMU, GatedNAUNMU
from nalu_keras.layers.npu import NPU, RealNaiveNPU
from nalu_keras.regularizers import (
    L1,
    ArithmeticRegularizer,
    InputRegularizer,
    OutOfBounds,
    Saturation,
    Sparsity,
    track_strengths,
)

W = np.array([[0.0, 0.3, -0.8], [1.0, -1.0, 0.5], [1.4, -0.1, 0.9]], "float32")
WD = W.astype(np.float64)


def value(regularizer, *args):
    return float(keras.ops.convert_to_numpy(regularizer(*args)))


# -- values -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "regularizer, expected",
    [
        (Sparsity(2.0), 2.0 * np.mean(np.minimum(np.abs(WD), 1 - np.abs(WD)))),
        (Sparsity(2.0, "squared"), 2.0 * np.mean(WD**2 * (1 - np.abs(WD)) ** 2)),
        (OutOfBounds(3.0), 3.0 * np.mean(np.maximum(np.abs(WD) - 1, 0))),
        (OutOfBounds(1.0, 0.0, 1.0), np.mean(np.maximum(-WD, 0) + np.maximum(WD - 1, 0))),
        (Saturation(0.05), 0.05 * np.mean(np.maximum(20 - np.abs(WD), 0))),
        (Saturation(1.0, threshold=0.5), np.mean(np.maximum(0.5 - np.abs(WD), 0))),
        (L1(0.1), 0.1 * np.sum(np.abs(WD))),
    ],
)
def test_weight_regularizer_values(regularizer, expected):
    assert value(regularizer, W) == pytest.approx(expected, rel=1e-6)


def test_sparsity_is_zero_exactly_at_the_solutions():
    exact = np.array([[-1.0, 0.0], [1.0, 0.0]], "float32")
    for shape in ("linear", "squared"):
        assert value(Sparsity(5.0, shape), exact) == 0.0
        assert value(Sparsity(5.0, shape), exact * 0.5) > 0.0


@pytest.mark.parametrize("unit", ["nau", "nmu"])
def test_input_regularizer_value(unit):
    x = np.random.default_rng(0).uniform(-1, 2, (6, 2, 3)).astype("float32")
    x_mean = x.astype(np.float64).mean(axis=(0, 1))[:, None]
    if unit == "nmu":
        expected = np.mean((1 - WD) * (1 - x_mean) ** 2)
    else:
        expected = np.mean((1 - np.abs(WD)) * x_mean**2)
    assert value(InputRegularizer(0.5), W, x, unit) == pytest.approx(0.5 * expected, rel=1e-5)


# -- the strength variable -----------------------------------------------------------
def test_strength_lives_in_a_variable():
    reg = Sparsity(0.25)
    assert isinstance(reg.strength_variable, keras.Variable)
    assert not reg.strength_variable.trainable
    assert tuple(reg.strength_variable.shape) == ()
    before = value(reg, W)
    reg.assign_strength(0.75)
    assert reg.strength == 0.75
    assert value(reg, W) == pytest.approx(3 * before)
    reg.strength_variable.assign(0.0)
    assert value(reg, W) == 0.0
    assert reg.get_config()["strength"] == 0.0


def test_track_strengths_adds_each_variable_once():
    shared = Saturation(0.05)
    layer = GNALU(2, w_hat_regularizer=shared, m_hat_regularizer=shared,
                  g_regularizer=L1(0.01))
    layer.build((None, 3))
    strengths = [v for v in layer.non_trainable_weights]
    assert len(strengths) == 2
    assert any(v is shared.strength_variable for v in strengths)
    # and they are model variables, so the compiled train step carries them
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layer(inputs))
    ids = {id(v) for v in model.non_trainable_variables}
    assert id(shared.strength_variable) in ids


def test_track_strengths_in_a_plain_keras_layer():
    class Scaled(keras.layers.Layer):
        def __init__(self, regularizer):
            super().__init__()
            self.regularizer = regularizer

        def build(self, input_shape):
            self.kernel = self.add_weight(
                shape=(input_shape[-1], 1), regularizer=self.regularizer
            )
            tracked = track_strengths(self, [self.regularizer, None, "l2"])
            assert tracked == [self.regularizer.strength_variable]

        def call(self, x):
            return keras.ops.matmul(x, self.kernel)

    reg = L1(0.5)
    layer = Scaled(reg)
    layer.build((None, 2))
    assert layer.non_trainable_weights == [reg.strength_variable]


@pytest.mark.parametrize(
    "make",
    [
        lambda r: NAU(2, w_regularizer=r),
        lambda r: NMU(2, w_regularizer=r, weight_bounds="clamp"),
        lambda r: GatedNAUNMU(2, w_nau_regularizer=r, g_regularizer=r),
        lambda r: GNALU(2, g_regularizer=r),
        lambda r: SigmoidMulNAC(2, w_hat_regularizer=r),
        lambda r: NAC(2, w_hat_regularizer=r),
        lambda r: MulNAC(2, m_hat_regularizer=r),
        lambda r: NALU(2, g_regularizer=r, w_hat_regularizer=r),
        lambda r: NALU(2, shared_weights=False, gate_bias=True, g_bias_regularizer=r),
        lambda r: iNALU(2, w_hat_mul_regularizer=r),
        lambda r: NPU(2, w_im_regularizer=r),
        lambda r: RealNaiveNPU(2, w_re_regularizer=r),
    ],
)
def test_every_unit_tracks_its_regularizer(make):
    reg = L1(0.01)
    layer = make(reg)
    layer.build((None, 3))
    tracked = [v is reg.strength_variable for v in layer.non_trainable_weights]
    assert tracked.count(True) == 1


def test_base_and_subclass_tracking_merge_without_duplicates():
    # NMU tracks its out-of-bounds and input regularizers in build_weights;
    # ArithmeticUnit.build adds the per-weight ones without dropping those.
    user, input_reg = Sparsity(0.1), InputRegularizer(0.2)
    layer = NMU(2, weight_bounds="clamp", w_regularizer=user, input_regularizer=input_reg)
    layer.build((None, 3))
    expected = [
        user.strength_variable,
        layer.bounds_regularizers["w"].strength_variable,
        input_reg.strength_variable,
    ]
    assert [id(v) for v in layer.non_trainable_weights] == [id(v) for v in expected]
    # One regularizer on two weights of a gated unit: tracked once.
    shared = L1(0.01)
    gated = GatedNAUNMU(1, weight_bounds="clamp", w_nau_regularizer=shared, g_regularizer=shared)
    gated.build((None, 2))
    ids = [id(v) for v in gated.non_trainable_weights]
    assert len(ids) == len(set(ids)) == 3  # shared + two out-of-bounds penalties
    assert id(shared.strength_variable) in ids


def test_track_strengths_calls_add_up():
    a, b = L1(0.1), Sparsity(0.2)
    returned = []

    class Twice(keras.layers.Layer):
        def build(self, input_shape):
            returned.append(track_strengths(self, [a]))
            returned.append(track_strengths(self, [b, a, None]))

    layer = Twice()
    layer.build((None, 2))
    assert returned == [[a.strength_variable], [a.strength_variable, b.strength_variable]]
    assert [id(v) for v in layer.non_trainable_weights] == [
        id(a.strength_variable), id(b.strength_variable)
    ]


def test_input_and_bounds_regularizers_are_tracked():
    layer = NMU(2, weight_bounds="clamp", input_regularizer=InputRegularizer(1.0))
    layer.build((None, 3))
    tracked = layer.non_trainable_weights
    assert any(v is layer.input_regularizer.strength_variable for v in tracked)
    assert any(v is layer.bounds_regularizers["w"].strength_variable for v in tracked)


def test_fit_loss_includes_the_penalty_with_its_strength():
    # lr = 0: the weights stay put, so the loss is mse + strength * penalty.
    reg = Sparsity(0.5)
    layer = NAU(1, w_regularizer=reg)
    model = keras.Sequential([keras.Input((2,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    layer.w.assign([[0.3], [0.6]])
    x = np.ones((8, 2), "float32")
    y = np.zeros((8, 1), "float32")
    mse = 0.9**2
    penalty = np.mean([0.3, 0.4])
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(mse + 0.5 * penalty, rel=1e-6)
    reg.assign_strength(2.0)  # between fits: the compiled step sees it
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(mse + 2.0 * penalty, rel=1e-6)


def test_regularizer_on_a_unit_inside_an_rnn_cell():
    reg = Sparsity(1.0)
    cell = ArithmeticCell(NAU(1, w_regularizer=reg))
    model = keras.Sequential([keras.Input((4, 1)), keras.layers.RNN(cell)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    cell.unit.w.assign([[0.5], [0.5]])
    x = np.zeros((2, 4, 1), "float32")
    history = model.fit(x, np.zeros((2, 1), "float32"), verbose=0)
    assert history.history["loss"][0] == pytest.approx(0.5)
    assert any(v is reg.strength_variable for v in model.non_trainable_variables)


# -- serialization -----------------------------------------------------------------
ALL = [
    Sparsity(0.3),
    Sparsity(0.2, "squared"),
    OutOfBounds(0.4, 0.0, 1.0),
    InputRegularizer(0.6),
    Saturation(0.05, 15.0),
    L1(1e-4),
]


@pytest.mark.parametrize("regularizer", ALL, ids=lambda r: type(r).__name__)
def test_regularizer_serialization_without_custom_objects(regularizer):
    config = keras.regularizers.serialize(regularizer)
    assert config["registered_name"] == f"nalu_keras>{type(regularizer).__name__}"
    clone = keras.regularizers.deserialize(config)
    assert type(clone) is type(regularizer)
    assert clone.get_config() == regularizer.get_config()
    assert clone.strength_variable is not regularizer.strength_variable
    if not isinstance(regularizer, InputRegularizer):
        assert value(clone, W) == value(regularizer, W)


@pytest.mark.parametrize(
    "regularizer",
    [r for r in ALL if not isinstance(r, InputRegularizer)],
    ids=lambda r: type(r).__name__,
)
def test_model_with_regularizer_saves_and_loads(regularizer, tmp_path):
    layer = NAU(3, w_regularizer=regularizer)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer="sgd", loss="mse")
    layer.w.assign(W)
    x = np.random.default_rng(1).uniform(-2, 2, (5, 3)).astype("float32")
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    twin = loaded.layers[-1]
    twin_reg = twin._regularizers["w"]
    assert type(twin_reg) is type(regularizer)
    assert twin_reg.get_config() == regularizer.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [float(v) for v in twin.losses] == pytest.approx([float(v) for v in layer.losses])
    assert any(v is twin_reg.strength_variable for v in twin.non_trainable_weights)


def test_model_with_input_regularizer_saves_and_loads(tmp_path):
    layer = NMU(2, input_regularizer=InputRegularizer(0.6))
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    twin = keras.saving.load_model(tmp_path / "m.keras").layers[-1]
    assert isinstance(twin.input_regularizer, InputRegularizer)
    assert twin.input_regularizer.strength == pytest.approx(0.6)


# -- Clip ---------------------------------------------------------------------------
def test_clip_values_and_serialization():
    clip = Clip(0.0, 1.0)
    out = keras.ops.convert_to_numpy(clip(np.array([-0.5, 0.3, 1.7], "float32")))
    np.testing.assert_array_equal(out, np.array([0.0, 0.3, 1.0], "float32"))
    config = keras.constraints.serialize(clip)
    assert config["registered_name"] == "nalu_keras>Clip"
    clone = keras.constraints.deserialize(config)
    assert clone.get_config() == {"min_value": 0.0, "max_value": 1.0}


def test_clip_on_a_keras_dense_after_fit():
    layer = keras.layers.Dense(1, use_bias=False, kernel_constraint=Clip(-0.5, 0.5))
    model = keras.Sequential([keras.Input((2,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    x = np.random.default_rng(2).uniform(1, 2, (64, 2)).astype("float32")
    model.fit(x, 5 * x[:, :1] - 5 * x[:, 1:], epochs=2, verbose=0)
    w = keras.ops.convert_to_numpy(layer.kernel.value)
    assert np.all(np.abs(w) <= 0.5) and np.max(np.abs(w)) == 0.5


# -- validation ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, bad",
    [
        (lambda: Sparsity(-0.1), "-0.1"),
        (lambda: Sparsity(float("nan")), "nan"),
        (lambda: Sparsity(True), "True"),
        (lambda: Sparsity(1.0, "cubic"), "'cubic'"),
        (lambda: OutOfBounds(1.0, 1.0, 0.0), "low=1.0"),
        (lambda: OutOfBounds(1.0, "a", 1.0), "'a'"),
        (lambda: Saturation(0.05, threshold=0), "0"),
        (lambda: L1("0.1"), "'0.1'"),
        (lambda: InputRegularizer(float("inf")), "inf"),
        (lambda: Clip(1.0, -1.0), "min_value=1.0"),
        (lambda: Clip(0.0, float("inf")), "inf"),
        (lambda: Sparsity(0.1).assign_strength(-2.0), "-2.0"),
    ],
)
def test_validation(make, bad):
    with pytest.raises(ValueError, match=bad.replace(".", r"\.")):
        make()


def test_base_class_is_abstract():
    with pytest.raises(NotImplementedError):
        ArithmeticRegularizer(1.0)(W)
