"""The benchmark's reference presets: each row of Madsen & Johansen's Table 1
built as their code builds it (layers, initializations, biases, regularizer
strengths and ramps) and trained with PyTorch's form of Adam."""

import keras
import numpy as np
import pytest

from nalu_keras.initializers import NACVarianceUniform
from nalu_keras.lab.experiments import benchmark
from nalu_keras.layers import NAUUniform
from nalu_keras.regularizers import Sparsity

CONFIG = benchmark.BenchConfig(units=benchmark.UNITS, ops=("add",), schedule="paper")

# row -> ((class of layer 1, class of layer 2), bias?, sparsity ramp (λ̂, start, end) or None)
TABLE = {
    "Linear": (("Dense", "Dense"), True, None),
    "ReLU": (("Dense", "Dense"), True, None),
    "ReLU6": (("Dense", "Dense"), True, None),
    "NAC+": (("NAC", "NAC"), False, None),
    "NAC•": (("NAC", "MulNAC"), False, None),
    "NAC•,σ": (("NAC", "SigmoidMulNAC"), False, None),
    "NAC•,NMU": (("NAU", "BoundedMulNAC"), False, (10.0, 1_000_000, 2_000_000)),
    "NALU": (("NALU", "NALU"), False, None),
    "NAU": (("NAU", "NAU"), False, (0.01, 5_000, 50_000)),
    "NMU": (("NAU", "NMU"), False, (10.0, 1_000_000, 2_000_000)),
}


def _layers(unit, config=CONFIG):
    return benchmark.build_model(unit, config).layers


def test_the_table_has_the_ten_published_rows():
    from nalu_keras.lab.published import ROWS

    assert set(TABLE) == set(ROWS)
    assert set(ROWS) <= set(benchmark.UNITS)


@pytest.mark.parametrize("row", list(TABLE))
def test_reference_row_structure(row):
    (first, second), bias, ramp = TABLE[row]
    layers = _layers(row)
    assert [type(layer).__name__ for layer in layers] == [first, second]
    assert layers[0].units == 2 and layers[1].units == 1
    assert layers[0].input.shape[-1] == 100
    for layer in layers:
        names = {v.path.split("/")[-1] for v in layer.trainable_weights}
        assert ("bias" in names) == bias
    assert CONFIG.warmup(row) == ramp
    for layer in layers:
        regularizer = getattr(layer, "_regularizers", {}).get("w")
        if ramp is None:
            assert not any(isinstance(r, Sparsity) for r in getattr(layer, "_regularizers", {}).values())
        else:
            assert isinstance(regularizer, Sparsity) and regularizer.shape == "linear"


def test_reference_initializations():
    nac, mul = _layers("NAC•")
    for layer in (nac, mul):
        for name in ("w_hat", "m_hat"):
            assert isinstance(layer._initializers[name], NACVarianceUniform)
    assert NACVarianceUniform().limit((100, 2)) == pytest.approx(0.504, abs=1e-3)
    assert NACVarianceUniform().limit((2, 1)) == pytest.approx(9.47, abs=1e-2)
    assert np.abs(keras.ops.convert_to_numpy(mul.w_hat)).max() > 1.5  # r = 9.47, not Glorot's 1.41
    nalu_1, _ = _layers("NALU")
    assert isinstance(nalu_1._initializers["w_hat"], NACVarianceUniform)
    assert type(nalu_1._initializers["g"]).__name__ == "GlorotUniform"
    assert nalu_1.shared_weights and not nalu_1.gate_bias
    _, sigma = _layers("NAC•,σ")
    init = sigma._initializers["w_hat"]
    assert isinstance(init, keras.initializers.VarianceScaling)
    assert (init.scale, init.mode, init.distribution) == (1.0, "fan_avg", "untruncated_normal")
    relu_1, relu_2 = _layers("ReLU")
    assert type(relu_1.kernel_initializer).__name__ == "HeUniform"
    assert relu_1.activation is keras.activations.relu and relu_2.activation is keras.activations.linear
    assert _layers("ReLU6")[0].activation is keras.activations.relu6
    linear_1, linear_2 = _layers("Linear")
    for layer in (linear_1, linear_2):
        assert type(layer.kernel_initializer).__name__ == "GlorotUniform"
        assert np.all(keras.ops.convert_to_numpy(layer.bias) == 0)
    nau_1, nmu = _layers("NMU")
    assert isinstance(nau_1._initializers["w"], NAUUniform)
    w = keras.ops.convert_to_numpy(nmu.w)
    assert 0.25 <= w.min() and w.max() <= 0.75
    _, bounded = _layers("NAC•,NMU")
    w = keras.ops.convert_to_numpy(bounded.w)
    assert 0.25 <= w.min() and w.max() <= 0.75 and bounded.epsilon == 1e-7


def test_library_preset_keeps_the_library_defaults():
    library = benchmark.BenchConfig(units=("Linear", "NAC+"), preset="library")
    linear = benchmark.build_model("Linear", library).layers
    assert all(not layer.use_bias for layer in linear)
    nac = benchmark.build_model("NAC+", library).layers[0]
    assert type(nac._initializers["w_hat"]).__name__ == "GlorotUniform"
    assert library.adam == ("keras", 1e-7) and CONFIG.adam == ("pytorch", 1e-8)
    assert library.settings()["preset"] == "library"
    assert benchmark.BenchConfig(suite="primer", ops=("add",)).preset == "library"
    with pytest.raises(ValueError, match="unknown preset"):
        benchmark.BenchConfig(preset="paper")


@pytest.mark.parametrize("alias", ["NAC*NMU", "nac•,nmu", "nacnmu"])
def test_ascii_names_of_the_new_rows(alias):
    assert benchmark.canonical_unit(alias) == "NAC•,NMU"
    assert benchmark.canonical_unit("relu6") == "ReLU6"


def test_pytorch_adam_is_torch_formula():
    """adam_update(form="pytorch") against torch.optim.Adam's update written
    out in numpy (float64)."""
    from nalu_keras.lab.training.vectorized import Adam, adam_update

    pytest.importorskip("jax")
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    p = rng.normal(size=(3, 2))
    grads = [rng.normal(size=(3, 2)) * 10.0 ** -k for k in range(6)]
    adam = Adam(1e-2, 0.9, 0.999, 1e-8, form="pytorch")
    ours = [jnp.asarray(p)]
    m = [jnp.zeros_like(ours[0])]
    v = [jnp.zeros_like(ours[0])]
    want, mw, vw = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for step, g in enumerate(grads):
        ours, m, v = adam_update(adam, ours, [jnp.asarray(g, ours[0].dtype)], m, v, jnp.asarray(step))
        t = step + 1
        mw = 0.9 * mw + 0.1 * g
        vw = 0.999 * vw + 0.001 * g * g
        want = want - 1e-2 / (1 - 0.9**t) * mw / (np.sqrt(vw) / np.sqrt(1 - 0.999**t) + 1e-8)
    np.testing.assert_allclose(np.asarray(ours[0]), want, rtol=1e-5)
    # where ε enters matters for tiny gradients: a first step with g = 1e-9
    tiny = [jnp.full((1,), 1e-9)]
    zeros = [jnp.zeros((1,))]
    torch_step = -float(adam_update(adam, [jnp.zeros((1,))], tiny, zeros, zeros, jnp.asarray(0))[0][0][0])
    keras_form = Adam(1e-2, 0.9, 0.999, 1e-8, form="keras")
    keras_step = -float(adam_update(keras_form, [jnp.zeros((1,))], tiny, zeros, zeros, jnp.asarray(0))[0][0][0])
    assert torch_step == pytest.approx(1e-2 * 1e-9 / (1e-9 + 1e-8), rel=1e-3)
    assert keras_step == pytest.approx(1e-2 * 3.1623e-11 / (3.1623e-11 + 1e-8), rel=1e-3)
    with pytest.raises(ValueError, match="Keras form only"):
        adam.keras_optimizer()
    with pytest.raises(ValueError, match="form"):
        Adam(form="sgd")
