"""Saving and loading the core layers and cells.

Every layer and cell is registered with Keras' serialization, so a `.keras`
file must load WITHOUT `custom_objects` and predict exactly what the saved
model predicted -- inside a functional model, and for cells inside
`keras.layers.RNN` with and without `return_sequences`. `get_config` ->
`from_config` must round-trip to an equal config.
"""

import copy

import keras
import numpy as np
import pytest

from nalu_keras import NAC, NALU, ArithmeticCell, MulNAC, NACCell, NALUCell

pytestmark = pytest.mark.filterwarnings(
    # Keras on JAX with numpy 2 (get_weights, np.asarray of variables)
    "ignore:__array__ implementation doesn't accept a copy keyword"
)

IN_DIM, UNITS = 5, 3

# Factories (fresh objects for every use), with ids for readable test names.
LAYERS = {
    "NAC": lambda: NAC(UNITS),
    "NAC-custom": lambda: NAC(
        UNITS,
        w_hat_initializer=keras.initializers.RandomNormal(0.0, 0.5, seed=3),
        m_hat_initializer="ones",
        w_hat_regularizer=keras.regularizers.L2(1e-3),
        m_hat_constraint=keras.constraints.MaxNorm(2.0),
        name="my_nac",
    ),
    "MulNAC": lambda: MulNAC(UNITS),
    "MulNAC-options": lambda: MulNAC(
        UNITS, epsilon=1e-5, log_mode="clamp", exp_clip=8.0,
        m_hat_regularizer=keras.regularizers.L1(1e-4),
    ),
    "NALU": lambda: NALU(UNITS),
    "NALU-separate-absgate-bias": lambda: NALU(
        UNITS, shared_weights=False, gate="abs_input", gate_bias=True
    ),
    "NALU-independent-clamp-clip": lambda: NALU(
        UNITS, gate="independent", log_mode="clamp", exp_clip=15.0, epsilon=1e-6
    ),
    "NALU-custom-everything": lambda: NALU(
        UNITS,
        shared_weights=False,
        gate_bias=True,
        w_hat_initializer=keras.initializers.RandomUniform(-2.0, 2.0, seed=1),
        m_hat_mul_initializer=keras.initializers.Constant(0.5),
        g_initializer=keras.initializers.GlorotNormal(seed=2),
        g_bias_initializer=keras.initializers.Constant(-1.0),
        w_hat_regularizer=keras.regularizers.L2(0.01),
        m_hat_regularizer=keras.regularizers.L1L2(l1=1e-3, l2=1e-3),
        g_regularizer="l2",
        w_hat_constraint=keras.constraints.MaxNorm(3.0),
        w_hat_mul_constraint=keras.constraints.NonNeg(),
        g_bias_constraint=keras.constraints.MinMaxNorm(0.0, 1.0),
    ),
}

CELLS = {
    "NACCell": lambda: NACCell(2),
    "NACCell-custom": lambda: NACCell(
        2,
        initial_state_value=0.5,
        w_hat_regularizer=keras.regularizers.L2(1e-3),
        m_hat_constraint=keras.constraints.MaxNorm(2.0),
    ),
    "NALUCell": lambda: NALUCell(2),
    "NALUCell-options": lambda: NALUCell(
        2,
        gate="independent",
        shared_weights=False,
        log_mode="clamp",
        exp_clip=10.0,
        initial_state_value=1.0,
        g_initializer="zeros",
    ),
    "ArithmeticCell-NAC": lambda: ArithmeticCell(NAC(2)),
    "ArithmeticCell-MulNAC": lambda: ArithmeticCell(MulNAC(2, epsilon=1e-6)),
    "ArithmeticCell-NALU-h0": lambda: ArithmeticCell(
        NALU(2, gate="abs_input", gate_bias=True), initial_state_value=2.0
    ),
}


# -- helpers -----------------------------------------------------------------
def normalized(config):
    """A config with tuples as lists (JSON makes no difference between them)."""
    if isinstance(config, dict):
        return {k: normalized(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [normalized(v) for v in config]
    return config


def save_and_load(model, tmp_path):
    path = tmp_path / "m.keras"
    model.save(path)
    # deliberately no custom_objects: the classes are registered
    return keras.saving.load_model(path)


def randomize(model, seed):
    """Non-default weights, so that a load that reinitializes would show."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0.0, 0.8, size=v.shape))


# -- layers ------------------------------------------------------------------
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_in_functional_model_round_trip(name, tmp_path):
    layer = LAYERS[name]()
    inputs = keras.Input((IN_DIM,))
    model = keras.Model(inputs, layer(inputs))
    randomize(model, seed=1)
    x = np.random.default_rng(2).uniform(-2.0, 2.0, size=(16, IN_DIM)).astype("float32")
    expected = model.predict(x, verbose=0)

    loaded = save_and_load(model, tmp_path)
    restored = loaded.layers[-1]
    assert type(restored) is type(layer)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    assert normalized(restored.get_config()) == normalized(layer.get_config())
    for a, b in zip(restored.weights, layer.weights):
        assert a.name == b.name
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # regularization losses survive too
    assert len(loaded.losses) == len(model.losses)
    for a, b in zip(loaded.losses, model.losses):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_config_round_trip(name):
    layer = LAYERS[name]()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    # the round trip also restores behaviour-relevant attributes
    for attr in ("units", "epsilon", "log_mode", "exp_clip", "gate", "gate_bias",
                 "shared_weights"):
        if hasattr(layer, attr):
            assert getattr(clone, attr) == getattr(layer, attr), attr


def test_config_records_custom_objects():
    config = LAYERS["NALU-custom-everything"]().get_config()
    assert config["shared_weights"] is False and config["gate_bias"] is True
    assert config["w_hat_regularizer"]["class_name"] == "L2"
    assert config["w_hat_constraint"]["class_name"] == "MaxNorm"
    assert config["w_hat_mul_constraint"]["class_name"] == "NonNeg"
    assert config["g_bias_initializer"]["class_name"] == "Constant"
    assert config["m_hat_mul_initializer"]["config"]["value"] == 0.5
    assert config["g_constraint"] is None


def test_constraints_and_regularizers_are_applied_after_loading(tmp_path):
    """Not just stored: the loaded layer regularizes and constrains."""
    layer = NAC(
        UNITS,
        w_hat_regularizer=keras.regularizers.L2(0.1),
        w_hat_constraint=keras.constraints.MaxNorm(1.0, axis=0),
    )
    inputs = keras.Input((IN_DIM,))
    model = keras.Model(inputs, layer(inputs))
    loaded = save_and_load(model, tmp_path).layers[-1]
    w = np.full((IN_DIM, UNITS), 2.0, dtype="float32")
    loaded.w_hat.assign(w)
    expected_penalty = 0.1 * np.sum(w**2)
    np.testing.assert_allclose(
        float(np.sum([np.asarray(v) for v in loaded.losses])), expected_penalty, rtol=1e-6
    )
    constrained = np.asarray(loaded.w_hat.constraint(loaded.w_hat.value))
    np.testing.assert_allclose(np.linalg.norm(constrained, axis=0), 1.0, rtol=1e-5)


# -- cells -------------------------------------------------------------------
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("name", list(CELLS))
def test_cell_in_rnn_round_trip(name, return_sequences, tmp_path):
    cell = CELLS[name]()
    inputs = keras.Input((7, 2))
    rnn = keras.layers.RNN(cell, return_sequences=return_sequences)
    model = keras.Model(inputs, rnn(inputs))
    randomize(model, seed=3)
    x = np.random.default_rng(4).uniform(0.5, 1.5, size=(4, 7, 2)).astype("float32")
    expected = model.predict(x, verbose=0)
    assert expected.shape == ((4, 7, 2) if return_sequences else (4, 2))
    assert np.isfinite(expected).all()

    loaded = save_and_load(model, tmp_path)
    restored = loaded.layers[-1]
    assert isinstance(restored, keras.layers.RNN)
    assert restored.return_sequences is return_sequences
    assert type(restored.cell) is type(cell)
    assert type(restored.cell.unit) is type(cell.unit)
    assert restored.cell.h0 == cell.h0
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    assert normalized(restored.cell.get_config()) == normalized(cell.get_config())


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_config_round_trip(name):
    cell = CELLS[name]()
    config = cell.get_config()
    clone = type(cell).from_config(config)
    assert normalized(clone.get_config()) == normalized(config)
    assert type(clone.unit) is type(cell.unit)
    # NACCell/NALUCell re-create their unit, which gets a fresh auto name
    unit_config = {k: v for k, v in cell.unit.get_config().items() if k != "name"}
    clone_unit_config = {k: v for k, v in clone.unit.get_config().items() if k != "name"}
    assert clone_unit_config == unit_config
    assert clone.h0 == cell.h0
    assert clone.state_size == cell.state_size


def test_named_cell_config_is_flat():
    """NACCell/NALUCell store the unit's options at top level, not a nested unit."""
    config = CELLS["NALUCell-options"]().get_config()
    assert "unit" not in config
    assert config["units"] == 2 and config["gate"] == "independent"
    assert config["shared_weights"] is False and config["exp_clip"] == 10.0
    assert config["initial_state_value"] == 1.0


def test_rnn_layer_config_round_trip():
    rnn = keras.layers.RNN(CELLS["ArithmeticCell-NALU-h0"](), return_sequences=True)
    config = keras.saving.serialize_keras_object(rnn)
    # RNN.from_config pops keys from the dict it gets: pass a copy
    clone = keras.saving.deserialize_keras_object(copy.deepcopy(config))
    assert type(clone.cell) is ArithmeticCell
    assert isinstance(clone.cell.unit, NALU)
    assert clone.cell.unit.gate == "abs_input" and clone.cell.unit.gate_bias is True
    assert clone.cell.h0 == 2.0
    assert normalized(keras.saving.serialize_keras_object(clone)) == normalized(config)
