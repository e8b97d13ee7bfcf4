"""The layer contract every arithmetic unit of the registry must keep.

In the spirit of Keras' own `run_layer_test`, for each distinct class behind
`nalu_keras.available_units()` (aliases are tested once, under the class
name):

1. build + call on rank-2 `(batch, features)` and rank-3
   `(batch, time, features)` input: the output shape is
   `compute_output_shape`, the dtype float32, and on rank 3 every time step
   is what the unit gives for that step alone (no silent mixing of axes).
   A unit declared rank-2-only must reject rank 3 with a clear error.
2. `get_config()` / `from_config()` (and Keras' serialize / deserialize)
   give an identical config and, after `set_weights`, identical outputs.
3. A `.keras` file of a small `Sequential` model loads without
   `custom_objects` and predicts exactly the same.
4. Masking: a unit that declares `supports_masking` passes the mask of a
   `Masking` layer on and leaves the unmasked steps unchanged; one that does
   not is listed as such (the id says "no-masking") and the mask is dropped,
   with Keras' warning.
5. Finite outputs and finite gradients (inputs and weights, `jax.grad`) on
   zeros, ±1e-30, ±1e4, negative and mixed-sign inputs (see
   `ADVERSARIAL_INPUTS` for why every unit's math is finite there).
6. An option for a weight the layer does not create is an error, and the
   per-weight options are readable as public attributes (as
   `keras.layers.Dense.kernel_initializer` is). Known gaps are strict
   xfails (`SILENTLY_ACCEPTED_OPTIONS`, `NO_PUBLIC_OPTION_ATTRIBUTES`): a fix
   turns them into failures, so the tables must then be updated.

Every class must be declared in `UNIT_FACTS`; a unit added to the registry
without its facts fails `test_every_unit_declares_its_facts` and every test
that reads them.
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from nalu_keras import available_units, get_unit
from nalu_keras import regularizers as nregs

pytestmark = pytest.mark.filterwarnings(
    # Keras on JAX with numpy 2 (get_weights, np.asarray of variables)
    "ignore:__array__ implementation doesn't accept a copy keyword"
)

BATCH, TIME, FEATURES, UNITS = 2, 3, 3, 2
OPTION_KINDS = ("initializer", "regularizer", "constraint")
# A valid value of each kind, for the option checks.
OPTION_VALUES = {"initializer": "zeros", "regularizer": "l2", "constraint": "non_neg"}
SERIALIZE = {
    "initializer": keras.initializers.serialize,
    "regularizer": keras.regularizers.serialize,
    "constraint": keras.constraints.serialize,
}


# -- the facts of every unit ---------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Variant:
    """A configuration of a unit.

    options: a function returning the constructor keyword arguments (fresh
        objects on every call: regularizers hold variables).
    absent: the entries of the class' `WEIGHTS` this configuration does not
        create (checked by `test_declared_absent_weights_are_not_created`).
    """

    options: object = dict
    absent: tuple = ()


@dataclasses.dataclass(frozen=True)
class Facts:
    """What a unit supports, declared once and checked by the tests.

    rank3: accepts `(batch, time, features)` input (applied per time step).
    masking: `supports_masking` is True (the mask of the input is passed on).
    needs_positive_inputs: the unit multiplies |x| (log space), so its
        product loses the sign of negative inputs.
    product_path: (extra options, {weight: value}) that leave only the
        multiplicative path of a gated unit (gate exactly 0), or None for a
        unit with no product (NAC, NAU). Used by the sign check.
    variants: name -> `Variant`; "default" (the constructor defaults) first.
    undefined_inputs: names of `ADVERSARIAL_INPUTS` where the unit's math
        has no finite answer (finiteness is not asserted there).
    """

    rank3: bool
    masking: bool
    needs_positive_inputs: bool
    product_path: tuple | None
    variants: dict
    undefined_inputs: tuple = ()


def _l1_on(*weights):
    """nalu_keras' L1 (a regularizer whose strength is a tracked variable)."""
    return lambda: {f"{w}_regularizer": nregs.L1(1e-3) for w in weights}


GATE_ZERO = ({"gate": "independent"}, {"g": -1000.0})  # σ(−1000) == 0 exactly

UNIT_FACTS = {
    "NAC": Facts(
        rank3=True, masking=False, needs_positive_inputs=False, product_path=None,
        variants={
            "default": Variant(),
            "custom": Variant(lambda: {
                "w_hat_initializer": keras.initializers.RandomNormal(0.0, 0.5, seed=3),
                "m_hat_regularizer": keras.regularizers.L2(1e-3),
                "w_hat_constraint": keras.constraints.MaxNorm(2.0),
            }),
        },
    ),
    "MulNAC": Facts(
        rank3=True, masking=False, needs_positive_inputs=True, product_path=({}, {}),
        variants={
            "default": Variant(),
            "clamp-clip": Variant(lambda: {
                "epsilon": 1e-6, "log_mode": "clamp", "exp_clip": 10.0,
                **_l1_on("m_hat")(),
            }),
        },
    ),
    "NALU": Facts(
        rank3=True, masking=False, needs_positive_inputs=True, product_path=GATE_ZERO,
        variants={
            # tied weights and no gate bias: no w_hat_mul, m_hat_mul, g_bias
            "default": Variant(absent=("w_hat_mul", "m_hat_mul", "g_bias")),
            "separate-absgate-bias": Variant(lambda: {
                "shared_weights": False, "gate": "abs_input", "gate_bias": True,
                "log_mode": "clamp", "exp_clip": 15.0, **_l1_on("g")(),
            }),
            "separate-independent": Variant(
                lambda: {"shared_weights": False, "gate": "independent"},
                absent=("g_bias",),
            ),
        },
    ),
    "NAU": Facts(
        rank3=True, masking=False, needs_positive_inputs=False, product_path=None,
        variants={
            "default": Variant(),
            "clamp-inputreg": Variant(lambda: {
                "weight_bounds": "clamp", "oob_strength": 0.5,
                "input_regularizer": nregs.InputRegularizer(0.1),
                "w_regularizer": nregs.Sparsity(0.01),
            }),
        },
    ),
    "NMU": Facts(
        rank3=True, masking=False, needs_positive_inputs=False, product_path=({}, {}),
        variants={
            "default": Variant(),
            "unbounded": Variant(lambda: {"weight_bounds": "none", **_l1_on("w")()}),
        },
    ),
    "GatedNAUNMU": Facts(
        rank3=True, masking=False, needs_positive_inputs=False, product_path=GATE_ZERO,
        variants={
            "default": Variant(absent=("g_bias",)),
            "bias-clamp": Variant(lambda: {
                "gate_bias": True, "weight_bounds": "clamp",
                "input_regularizer": nregs.InputRegularizer(0.1),
            }),
        },
    ),
    "SigmoidMulNAC": Facts(
        rank3=True, masking=False, needs_positive_inputs=True, product_path=({}, {}),
        variants={
            "default": Variant(),
            "clamp": Variant(lambda: {"log_mode": "clamp", "exp_clip": 12.0}),
        },
    ),
    "BoundedMulNAC": Facts(
        rank3=True, masking=False, needs_positive_inputs=True, product_path=({}, {}),
        variants={
            "default": Variant(),
            "clip-unbounded": Variant(lambda: {
                "exp_clip": 10.0, "weight_bounds": "none", "epsilon": 1e-5,
            }),
        },
    ),
    "iNALU": Facts(
        rank3=True, masking=False, needs_positive_inputs=False,
        product_path=({}, {"g": -1000.0}),
        variants={
            "default": Variant(),
            # tied weights: no w_hat_mul, m_hat_mul
            "shared": Variant(
                lambda: {"shared_weights": True, "exp_clip": None},
                absent=("w_hat_mul", "m_hat_mul"),
            ),
            "saturation": Variant(lambda: {
                "w_hat_regularizer": nregs.Saturation(0.05),
                "g_regularizer": nregs.Saturation(0.0),
            }),
        },
    ),
    "NPU": Facts(
        rank3=True, masking=False, needs_positive_inputs=False, product_path=({}, {}),
        variants={
            "default": Variant(),
            "blocked-l1": Variant(lambda: {
                "gate_gradient": "blocked", "epsilon": 1e-6, **_l1_on("w_re", "w_im", "g")(),
            }),
        },
    ),
    "RealNPU": Facts(
        rank3=True, masking=False, needs_positive_inputs=False, product_path=({}, {}),
        variants={
            "default": Variant(),
            "blocked-l1": Variant(lambda: {"gate_gradient": "blocked", **_l1_on("w_re")()}),
        },
    ),
    "NaiveNPU": Facts(
        rank3=True, masking=False, needs_positive_inputs=False, product_path=({}, {}),
        variants={
            "default": Variant(),
            "epsilon-l1": Variant(lambda: {"epsilon": 1e-5, **_l1_on("w_im")()}),
        },
    ),
    "RealNaiveNPU": Facts(
        rank3=True, masking=False, needs_positive_inputs=False, product_path=({}, {}),
        variants={"default": Variant()},
    ),
    "GNALU": Facts(
        rank3=True, masking=False, needs_positive_inputs=True, product_path=GATE_ZERO,
        variants={
            "default": Variant(absent=("w_hat_mul", "m_hat_mul", "g_bias")),
            "separate-independent": Variant(
                lambda: {"shared_weights": False, "gate": "independent", "epsilon": 1e-6},
                absent=("g_bias",),
            ),
        },
    ),
}

# -- known gaps (strict xfails; report them, fix them in the layers) -----------
# (class, variant, weight): the option of a weight this configuration does not
# create is accepted silently. Cause: `ArithmeticUnit.__init__` takes every
# `<name>_initializer/_regularizer/_constraint` whose name is in the class'
# `WEIGHTS`, whatever the configuration then builds.
SILENTLY_ACCEPTED_OPTIONS = {
    ("NALU", "default", "w_hat_mul"),
    ("NALU", "default", "m_hat_mul"),
    ("NALU", "default", "g_bias"),
    ("NALU", "separate-independent", "g_bias"),
    ("GatedNAUNMU", "default", "g_bias"),
    ("iNALU", "shared", "w_hat_mul"),
    ("iNALU", "shared", "m_hat_mul"),
    ("GNALU", "default", "w_hat_mul"),
    ("GNALU", "default", "m_hat_mul"),
    ("GNALU", "default", "g_bias"),
    ("GNALU", "separate-independent", "g_bias"),
}
# Classes whose per-weight options (e.g. `w_hat_initializer`) are not public
# attributes: they live only in the private dicts `_initializers`,
# `_regularizers`, `_constraints` of `ArithmeticUnit` (and in `get_config`).
NO_PUBLIC_OPTION_ATTRIBUTES = {
    "NAC", "MulNAC", "NALU", "NAU", "NMU", "GatedNAUNMU", "SigmoidMulNAC",
    "BoundedMulNAC", "iNALU", "NPU", "RealNPU", "NaiveNPU", "RealNaiveNPU", "GNALU",
}


# -- the units under test ------------------------------------------------------
def _unit_classes():
    """class -> the registry names that give it, in registry order."""
    classes = {}
    for name in available_units():
        classes.setdefault(get_unit(name), []).append(name)
    return classes


UNIT_CLASSES = _unit_classes()
CLASSES = list(UNIT_CLASSES)


def facts_of(cls):
    try:
        return UNIT_FACTS[cls.__name__]
    except KeyError:
        pytest.fail(
            f"{cls.__name__} (registry names {UNIT_CLASSES.get(cls)}) has no entry in "
            "UNIT_FACTS: declare what it supports (rank 3, masking, positive inputs, "
            "variants and the weights each variant leaves out)."
        )


def _declared(cls):
    return UNIT_FACTS.get(cls.__name__)


def _variants(cls):
    facts = _declared(cls)
    return list(facts.variants) if facts else ["default"]


def _flag_id(cls, flag, yes, no):
    facts = _declared(cls)
    if facts is None:
        return f"{cls.__name__}-undeclared"
    return f"{cls.__name__}-{yes if getattr(facts, flag) else no}"


def make(cls, variant="default"):
    return cls(UNITS, **facts_of(cls).variants[variant].options())


def built(cls, variant="default", input_shape=(None, FEATURES)):
    layer = make(cls, variant)
    layer.build(input_shape)
    return layer


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def sample(shape, seed=0):
    """Inputs of both signs, away from 0 (|x| in [0.5, 2])."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)).astype("float32")


def config_json(layer):
    return json.dumps(layer.get_config(), sort_keys=True, default=repr)


def mask_of(tensor):
    try:
        from keras.src.backend.common.masking import get_keras_mask
    except ImportError:  # pragma: no cover - other Keras versions
        return getattr(tensor, "_keras_mask", None)
    return get_keras_mask(tensor)


def weight_names(layer):
    return {v.path.rpartition("/")[2] for v in layer.variables}


VARIANT_CASES = [
    pytest.param(cls, variant, id=f"{cls.__name__}-{variant}")
    for cls in CLASSES
    for variant in _variants(cls)
]
by_class = pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
by_variant = pytest.mark.parametrize("cls, variant", VARIANT_CASES)


# -- the facts table itself ----------------------------------------------------
def test_every_unit_declares_its_facts():
    names = {cls.__name__ for cls in CLASSES}
    assert not names - set(UNIT_FACTS), f"classes without facts: {sorted(names - set(UNIT_FACTS))}"
    assert not set(UNIT_FACTS) - names, f"facts of unknown classes: {sorted(set(UNIT_FACTS) - names)}"
    for name, facts in UNIT_FACTS.items():
        assert next(iter(facts.variants)) == "default", name
        assert set(facts.undefined_inputs) <= set(ADVERSARIAL_INPUTS), name


@by_variant
def test_declared_absent_weights_are_not_created(cls, variant):
    layer = built(cls, variant)
    absent = set(facts_of(cls).variants[variant].absent)
    assert absent <= set(cls.WEIGHTS)
    created = weight_names(layer) & set(cls.WEIGHTS)
    assert created == set(cls.WEIGHTS) - absent, (
        f"{cls.__name__}[{variant}] creates {sorted(created)}; UNIT_FACTS declares "
        f"{sorted(absent)} absent out of {cls.WEIGHTS}"
    )


# -- 1. build and call: shapes and dtypes ----------------------------------------
@by_class
def test_rank2_build_and_call(cls):
    layer = make(cls)
    x = sample((BATCH, FEATURES))
    y = layer(x)
    assert layer.built
    assert tuple(y.shape) == tuple(layer.compute_output_shape(x.shape)) == (BATCH, UNITS)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    # float64 data is computed in the layer's float32
    y64 = layer(x.astype("float64"))
    assert keras.backend.standardize_dtype(y64.dtype) == "float32"
    np.testing.assert_allclose(to_np(y64), to_np(y), rtol=1e-6)
    # symbolic: the traced shape agrees with compute_output_shape
    symbolic = make(cls)(keras.Input((FEATURES,)))
    assert tuple(symbolic.shape) == (None, UNITS)
    assert keras.backend.standardize_dtype(symbolic.dtype) == "float32"


@pytest.mark.parametrize(
    "cls", CLASSES, ids=[_flag_id(c, "rank3", "rank3", "rank2-only") for c in CLASSES]
)
def test_rank3_build_and_call(cls):
    layer = make(cls)
    x = sample((BATCH, TIME, FEATURES), seed=1)
    if not facts_of(cls).rank3:
        with pytest.raises(ValueError, match="rank|ndim"):
            layer(x)
        return
    y = layer(x)
    expected_shape = tuple(layer.compute_output_shape(x.shape))
    assert tuple(y.shape) == expected_shape == (BATCH, TIME, UNITS)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    # applied per time step, the same weights for every step
    for t in range(TIME):
        np.testing.assert_allclose(
            to_np(y[:, t]), to_np(layer(x[:, t])), rtol=1e-5, atol=1e-6,
            err_msg=f"time step {t} differs from the unit applied to that step alone",
        )
    symbolic = make(cls)(keras.Input((None, FEATURES)))
    assert tuple(symbolic.shape) == (None, None, UNITS)


@by_class
def test_rank1_input_is_a_clear_error(cls):
    with pytest.raises(ValueError, match="rank|ndim"):
        make(cls)(np.ones((FEATURES,), dtype="float32"))


# -- 2. get_config / from_config -------------------------------------------------
@by_variant
def test_config_round_trip(cls, variant):
    layer = built(cls, variant)
    config = layer.get_config()
    original = config_json(layer)
    clone = cls.from_config(json.loads(json.dumps(config)))
    assert config_json(clone) == original
    # Keras' registered serialization, no custom_objects
    revived = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    )
    assert type(revived) is cls
    assert config_json(revived) == original

    x = sample((BATCH, FEATURES), seed=2)
    expected = to_np(layer(x))
    for other in (clone, revived):
        if not other.built:  # serialize_keras_object keeps the build config
            other.build((None, FEATURES))
        assert [v.path.rpartition("/")[2] for v in other.weights] == [
            v.path.rpartition("/")[2] for v in layer.weights
        ]
        other.set_weights(layer.get_weights())
        np.testing.assert_array_equal(to_np(other(x)), expected)


# -- 3. .keras save / load -------------------------------------------------------
@by_variant
def test_keras_file_round_trip(cls, variant, tmp_path):
    model = keras.Sequential([keras.Input((FEATURES,)), make(cls, variant)])
    x = sample((BATCH + 2, FEATURES), seed=3)
    expected = to_np(model(x))
    path = tmp_path / f"{cls.__name__}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects
    assert type(loaded.layers[-1]) is cls
    assert config_json(loaded.layers[-1]) == config_json(model.layers[-1])
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(to_np(loaded(x)), expected)


# -- 4. masking ------------------------------------------------------------------
@pytest.mark.parametrize(
    "cls", CLASSES, ids=[_flag_id(c, "masking", "masking", "no-masking") for c in CLASSES]
)
def test_masking(cls):
    facts = facts_of(cls)
    layer = make(cls)
    assert layer.supports_masking == facts.masking, (
        f"{cls.__name__}.supports_masking is {layer.supports_masking}; UNIT_FACTS says "
        f"{facts.masking}"
    )
    if not facts.rank3:
        pytest.skip("masking needs a time axis; the unit is rank-2 only")
    x = sample((BATCH, TIME, FEATURES), seed=4)
    x[0, 1] = 0.0  # a masked step
    unmasked = np.any(x != 0.0, axis=-1)
    inputs = keras.Input((TIME, FEATURES))
    masked = keras.layers.Masking(0.0)(inputs)
    if facts.masking:
        outputs = layer(masked)
        assert mask_of(outputs) is not None, "the mask is not passed on"
        mask = layer.compute_mask(x, keras.ops.convert_to_tensor(unmasked))
        assert mask is not None
        np.testing.assert_array_equal(to_np(mask), unmasked)
    else:
        # Declared: no masking. Keras drops the mask, and says so.
        with pytest.warns(UserWarning, match="does not support masking"):
            outputs = layer(masked)
        assert mask_of(outputs) is None
    model = keras.Model(inputs, outputs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not support masking")
        through_mask = to_np(model(x))
    np.testing.assert_allclose(
        through_mask[unmasked], to_np(layer(x))[unmasked], rtol=1e-6, atol=1e-7
    )


# -- 5. finite outputs and gradients on adversarial inputs --------------------------
# Every unit's math is finite on these inputs (3 features, default options):
# * additive units (NAC, NAU, the additive paths) are linear;
# * the NMU factors W x + 1 − W are finite and the product of 3 factors of
#   |x| <= 1e4 stays below 1e13; a zero factor is an exact 0 (safe_product);
# * log-space units take log(|x| + ε) or log(max(|x|, ε)) with ε > 0 (the
#   documented behaviour at 0), so the exponent is finite, and bounded: the
#   NAC weights lie in (−1, 1), σ(Ŵ) and the NMU-style weights in [0, 1],
#   iNALU caps the exponent at 20; |exponent| <= 3 · |log ε| ≈ 48 < 88, so
#   exp does not overflow in float32 — division by an exact 0 is 1/ε, large
#   but finite (in the NPUs W_re starts from Glorot-uniform, |W| < 1.1);
# * |x| has gradient 0 at x = 0 on every backend (ops._abs), ∂ log(|x| + ε)
#   is at most 1/ε, and the gates are exactly 0/1 where they saturate
#   (ops.gate_mix), so no 0 · inf arises.
ADVERSARIAL_INPUTS = {
    "zeros": [[0.0, 0.0, 0.0], [0.0, -0.0, 0.0]],
    "tiny": [[1e-30, 1e-30, 1e-30], [1e-30, 2e-30, 5e-31]],
    "negative-tiny": [[-1e-30, -1e-30, -1e-30], [-1e-30, 1e-30, -5e-31]],
    "large": [[1e4, 1e4, 1e4], [1e4, 5e3, 2e4 / 3]],
    "negative-large": [[-1e4, -1e4, -1e4], [-1e4, 1e4, -5e3]],
    "negative": [[-0.5, -2.0, -3.0], [-1.5, -0.25, -7.0]],
    "mixed-signs": [[-2.0, 0.0, 3.0], [1e4, -1e-30, -0.5]],
}

FINITE_CASES = [
    pytest.param(cls, kind, id=f"{cls.__name__}-{kind}")
    for cls in CLASSES
    for kind in ADVERSARIAL_INPUTS
    if not (_declared(cls) and kind in _declared(cls).undefined_inputs)
]


@pytest.mark.parametrize("cls, kind", FINITE_CASES)
def test_finite_outputs_and_gradients(cls, kind):
    facts_of(cls)
    layer = built(cls)
    x = jnp.asarray(ADVERSARIAL_INPUTS[kind], dtype="float32")
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def loss(weights, inputs):
        out, _ = layer.stateless_call(weights, non_trainable, inputs)
        return jnp.sum(out)

    out = to_np(layer(x))
    assert np.isfinite(out).all(), f"non-finite output on {kind}: {out}"
    (weight_grads, input_grad) = jax.grad(loss, argnums=(0, 1))(trainable, x)
    assert np.isfinite(np.asarray(input_grad)).all(), (
        f"non-finite gradient w.r.t. the inputs on {kind}: {np.asarray(input_grad)}"
    )
    assert len(weight_grads) == len(layer.trainable_variables) > 0
    for variable, grad in zip(layer.trainable_variables, weight_grads):
        grad = np.asarray(grad)
        assert grad.shape == tuple(variable.shape)
        assert np.isfinite(grad).all(), f"non-finite gradient of {variable.path} on {kind}: {grad}"


@pytest.mark.parametrize(
    "cls",
    CLASSES,
    ids=[_flag_id(c, "needs_positive_inputs", "needs-positive-inputs", "sign-aware") for c in CLASSES],
)
def test_sign_handling_matches_the_facts(cls):
    """needs_positive_inputs: the product depends on |x| only; else the sign counts."""
    facts = facts_of(cls)
    extra, assignments = facts.product_path if facts.product_path else ({}, {})
    options = {**facts.variants["default"].options(), **extra}
    layer = cls(UNITS, **options)
    layer.build((None, FEATURES))
    for name, value in assignments.items():
        variable = getattr(layer, name)
        variable.assign(np.full(variable.shape, value, dtype="float32"))
    x = np.array([[-2.0, 3.0, 0.5], [1.5, -0.25, -4.0]], dtype="float32")
    signed, magnitude = to_np(layer(x)), to_np(layer(np.abs(x)))
    if facts.needs_positive_inputs:
        np.testing.assert_array_equal(signed, magnitude)
    else:
        assert not np.allclose(signed, magnitude), "the output ignores the sign of x"


# -- 6. options of weights that are not created; public option attributes -----------
ALL_WEIGHT_NAMES = sorted({w for cls in CLASSES for w in cls.WEIGHTS} | {"kernel", "bias"})


@by_class
def test_options_of_other_units_weights_are_errors(cls):
    """E.g. NAU(2, g_initializer=...): the NAU has no gate. Also Dense's
    `kernel_*` / `bias_*` names, which a unit does not have."""
    accepted = []
    for weight in ALL_WEIGHT_NAMES:
        if weight in cls.WEIGHTS:
            continue
        for kind in OPTION_KINDS:
            option = f"{weight}_{kind}"
            try:
                cls(UNITS, **{option: OPTION_VALUES[kind]})
            except (ValueError, TypeError) as error:
                assert option in str(error), f"unclear message for {option}: {error}"
            else:
                accepted.append(option)
    assert not accepted, f"{cls.__name__} silently accepts {accepted}"


def _absent_cases():
    cases = []
    for cls in CLASSES:
        facts = _declared(cls)
        if facts is None:
            continue
        for variant_name, variant in facts.variants.items():
            for weight in variant.absent:
                key = (cls.__name__, variant_name, weight)
                marks = []
                if key in SILENTLY_ACCEPTED_OPTIONS:
                    marks = [pytest.mark.xfail(strict=True, reason=(
                        f"{cls.__name__}({variant_name}) does not create `{weight}` but "
                        f"silently accepts {weight}_initializer/_regularizer/_constraint "
                        "(ArithmeticUnit.__init__ takes every option named in WEIGHTS)"
                    ))]
                cases.append(pytest.param(
                    cls, variant_name, weight, marks=marks,
                    id=f"{cls.__name__}-{variant_name}-{weight}",
                ))
    return cases


@pytest.mark.parametrize("cls, variant, weight", _absent_cases())
def test_options_of_weights_the_configuration_does_not_create_are_errors(cls, variant, weight):
    """E.g. NALU(2, w_hat_mul_initializer=...) with the default tied weights."""
    accepted = []
    for kind in OPTION_KINDS:
        option = f"{weight}_{kind}"
        options = {**facts_of(cls).variants[variant].options(), option: OPTION_VALUES[kind]}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                layer = cls(UNITS, **options)
                layer.build((None, FEATURES))
        except (ValueError, TypeError) as error:
            assert weight in str(error), f"unclear message for {option}: {error}"
        else:
            accepted.append(option)
    assert not accepted, (
        f"{cls.__name__}[{variant}] creates no `{weight}` but accepts {accepted} silently"
    )


def _attribute_cases():
    cases = []
    for cls in CLASSES:
        facts = _declared(cls)
        absent = facts.variants["default"].absent if facts else ()
        expected = [f"{w}_{k}" for w in cls.WEIGHTS if w not in absent for k in OPTION_KINDS]
        marks = []
        if cls.__name__ in NO_PUBLIC_OPTION_ATTRIBUTES:
            marks = [pytest.mark.xfail(strict=True, reason=(
                f"{cls.__name__} has no public attributes {', '.join(expected)} "
                "(the options are only in the private _initializers/_regularizers/"
                "_constraints dicts and get_config)"
            ))]
        cases.append(pytest.param(cls, marks=marks, id=cls.__name__))
    return cases


@pytest.mark.parametrize("cls", _attribute_cases())
def test_per_weight_options_are_public_attributes(cls):
    """Like Dense.kernel_initializer: `unit.w_hat_initializer` etc., equal to
    what get_config saves."""
    layer = make(cls)
    config = layer.get_config()
    absent = facts_of(cls).variants["default"].absent
    missing, wrong = [], []
    for weight in cls.WEIGHTS:
        if weight in absent:
            continue
        for kind in OPTION_KINDS:
            option = f"{weight}_{kind}"
            if not hasattr(layer, option):
                missing.append(option)
                continue
            value = getattr(layer, option)
            serialized = None if value is None else SERIALIZE[kind](value)
            if json.dumps(serialized, sort_keys=True, default=repr) != json.dumps(
                config[option], sort_keys=True, default=repr
            ):
                wrong.append(option)
    assert not missing, f"{cls.__name__} has no public attributes {missing}"
    assert not wrong, f"{cls.__name__} attributes differ from get_config: {wrong}"
