"""The neural addition and multiplication units of Madsen & Johansen (2020).

`NAU` adds and subtracts, `NMU` multiplies (negative inputs and zeros
included), `GatedNAUNMU` chooses between the two with a NALU-style gate. Their
weights are used as they are (no tanh or σ) and kept in range: by projection
after every optimizer step (the default, a `Clip` constraint), or by clamping
in the forward pass plus an out-of-bounds penalty.
"""

from __future__ import annotations

import numbers

import keras

from nalu_keras import ops as nops
from nalu_keras import regularizers as nregs
from nalu_keras.constraints import Clip
from nalu_keras.layers.base import (
    ArithmeticUnit,
    check_choice,
    check_non_negative,
    check_positive,
)
from nalu_keras.layers.nalu import _NALUGate

WEIGHT_BOUNDS = ("project", "clamp", "none")
NAU_BOUNDS = (-1.0, 1.0)
NMU_BOUNDS = (0.0, 1.0)


def _fans(shape):
    """(fan_in, fan_out) of a weight shape, as Keras counts them."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = 1
    for dim in shape[:-2]:
        receptive *= dim
    return shape[-2] * receptive, shape[-1] * receptive


@keras.saving.register_keras_serializable(package="nalu_keras")
class NAUUniform(keras.initializers.RandomUniform):
    """The NAU initialization of Madsen & Johansen (2020): U[−r, r] with

        r = min(cap, √3 · √(2 / (fan_in + fan_out)))

    that is the Glorot variance 2 / (fan_in + fan_out), with the limit capped
    at `cap` (0.5 in the paper's code) so the weights start away from ±1.

    Args:
        cap: positive float, the largest limit r (default 0.5).
        seed: None or int, as in `keras.initializers.RandomUniform`.

    Example:

    >>> init = NAUUniform()
    >>> init.limit((100, 100))   # √3 · √(2/200) ≈ 0.173
    >>> w = init((100, 100))
    """

    def __init__(self, cap=0.5, seed=None):
        self.cap = check_positive("cap", cap)
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
        ):
            raise ValueError(
                f"Received an invalid value for argument `seed`, expected None "
                f"or an int, got {seed!r}."
            )
        super().__init__(minval=-self.cap, maxval=self.cap, seed=seed)
        self._seed_argument = seed

    def limit(self, shape):
        """The limit r for a weight of `shape`."""
        fan_in, fan_out = _fans(shape)
        return nops.nau_init_limit(fan_in, fan_out, self.cap)

    def __call__(self, shape, dtype=None):
        r = self.limit(shape)
        return keras.random.uniform(
            shape, minval=-r, maxval=r, seed=self.seed, dtype=dtype
        )

    def get_config(self):
        return {"cap": self.cap, "seed": self._seed_argument}


def _to_numpy(x):
    # via a tensor: numpy's conversion of a Keras variable is deprecated
    return keras.ops.convert_to_numpy(keras.ops.convert_to_tensor(x))


def _nmu_initializer():
    # U[0.25, 0.75], the range of Madsen & Johansen's experiments.
    return keras.initializers.RandomUniform(0.25, 0.75)


class _BoundedUnit(ArithmeticUnit):
    """Shared by NAU, NMU and GatedNAUNMU: weights kept in fixed intervals.

    Subclasses set `BOUNDS`: weight name -> (low, high), the weights used as
    they are and kept in range, and `INPUT_PENALTY`: weight name -> "nau" /
    "nmu", the form of R_z for that weight.
    """

    BOUNDS: dict = {}
    INPUT_PENALTY: dict = {}

    def __init__(
        self,
        units,
        weight_bounds="project",
        oob_strength=1.0,
        input_regularizer=None,
        **kwargs,
    ):
        weight_bounds = check_choice("weight_bounds", weight_bounds, WEIGHT_BOUNDS)
        if weight_bounds == "project":
            for name, (low, high) in self.BOUNDS.items():
                if kwargs.get(f"{name}_constraint") is None:
                    kwargs[f"{name}_constraint"] = Clip(low, high)
        for name, factory in self._default_initializers().items():
            if kwargs.get(f"{name}_initializer") is None:
                kwargs[f"{name}_initializer"] = factory()
        super().__init__(units, **kwargs)
        self.weight_bounds = weight_bounds
        self.oob_strength = check_non_negative("oob_strength", oob_strength)
        # With "clamp", one out-of-bounds penalty per bounded weight; each has
        # its own strength variable so a schedule can drive it.
        self.bounds_regularizers = {}
        if weight_bounds == "clamp":
            self.bounds_regularizers = {
                name: nregs.OutOfBounds(self.oob_strength, low, high)
                for name, (low, high) in self.BOUNDS.items()
            }
        if input_regularizer is not None:
            given = input_regularizer
            input_regularizer = keras.regularizers.get(given)
            if not isinstance(input_regularizer, nregs.InputRegularizer):
                raise ValueError(
                    "Received an invalid value for argument "
                    "`input_regularizer`, expected None or a "
                    "nalu_keras.regularizers.InputRegularizer (or its config), "
                    f"got {given!r}."
                )
        self.input_regularizer = input_regularizer

    @classmethod
    def _default_initializers(cls):
        return {}

    # -- building ----------------------------------------------------------
    def add_bounded_weight(self, name, shape):
        """`add_unit_weight`, plus the out-of-bounds penalty with "clamp"."""
        variable = self.add_unit_weight(name, shape)
        if name in self.bounds_regularizers:
            # The variable's own regularizer slot holds the user's regularizer
            # (e.g. `Sparsity`) and the penalty together; the config keeps
            # only the user's (`self._regularizers`).
            variable.regularizer = nregs.combine(
                self._regularizers[name], self.bounds_regularizers[name]
            )
        return variable

    def track_regularizer_strengths(self):
        """Track the strength variables of every regularizer of this layer."""
        nregs.track_strengths(
            self,
            [
                *self._regularizers.values(),
                *self.bounds_regularizers.values(),
                self.input_regularizer,
            ],
        )

    def applied(self, name):
        """The weight `name` as the forward pass uses it (clamped with "clamp")."""
        variable = getattr(self, name)
        if self.weight_bounds == "clamp":
            low, high = self.BOUNDS[name]
            return keras.ops.clip(variable, low, high)
        return variable

    def add_input_penalty(self, inputs, weights):
        """Add R_z (if configured) for `weights`: name -> applied matrix."""
        if self.input_regularizer is None:
            return
        for name, w in weights.items():
            self.add_loss(self.input_regularizer(w, inputs, self.INPUT_PENALTY[name]))

    def get_config(self):
        config = super().get_config()
        oob = self.oob_strength
        if self.bounds_regularizers:
            oob = next(iter(self.bounds_regularizers.values())).strength
        config.update(
            weight_bounds=self.weight_bounds,
            oob_strength=oob,
            input_regularizer=None
            if self.input_regularizer is None
            else keras.saving.serialize_keras_object(self.input_regularizer),
        )
        return config


class _SingleWeightUnit(_BoundedUnit):
    """Shared by NAU and NMU: one bounded weight `w`, `(input_dim, units)`.

    Subclasses set `BOUNDS` and `INPUT_PENALTY` for "w" and implement
    `_apply(inputs, w)`, the unit's operation with the applied weight.
    """

    WEIGHTS = ("w",)

    def build_weights(self, input_dim):
        self.w = self.add_bounded_weight("w", (input_dim, self.units))
        self.track_regularizer_strengths()

    @property
    def W(self):
        return self.applied("w")

    def _apply(self, inputs, w):
        raise NotImplementedError

    def call(self, inputs):
        w = self.W
        self.add_input_penalty(inputs, {"w": w})
        return self._apply(inputs, w)

    def effective_weights(self):
        return {"W": _to_numpy(self.W)}


# The arguments, shapes and attributes of NAU and NMU (`_SingleWeightUnit`),
# documented once; each docstring fills in its default initializer.
_SINGLE_WEIGHT_ARGS = """
    Args:
        units: positive int, dimensionality of the output.
        weight_bounds: how W is kept in range. `"project"` (default, the
            paper): W is clipped back into range after every optimizer step
            by a `Clip` constraint (an explicit `w_constraint` replaces it).
            `"clamp"`: the forward pass uses clip(W) and an out-of-bounds
            penalty oob_strength · mean(relu(low − W) + relu(W − high)) is
            added as a regularization loss (its `OutOfBounds` regularizer is
            in `bounds_regularizers`, schedulable). `"none"`: W is not kept
            in range (for ablations).
        oob_strength: finite float >= 0, the initial strength of that
            penalty (default 1.0; only used with `"clamp"`).
        input_regularizer: None (default) or an `InputRegularizer`: the R_z
            penalty on the mean input of each batch, added with `add_loss`.
        w_initializer: {w_initializer}
        w_regularizer: optional regularizer of W (e.g. `Sparsity`).
        w_constraint: optional constraint of W (see `weight_bounds`).
        **kwargs: base `keras.layers.Layer` arguments{kwargs_note}.

    Input shape:
        N-D tensor with shape `(batch_size, ..., input_dim)`, N >= 2.

    Output shape:
        N-D tensor with shape `(batch_size, ..., units)`.

    Attributes:
        w: the weight W, shape `(input_dim, units)`.
        W: W as the forward pass uses it (clamped with `"clamp"`).
"""


@keras.saving.register_keras_serializable(package="nalu_keras")
class NAU(_SingleWeightUnit):
    __doc__ = """The neural addition unit (NAU) of Madsen & Johansen (2020).

    A linear map without bias whose weight is used as is and kept in [-1, 1]:

        y = x @ W,   W ∈ [-1, 1]

    With W ∈ {{-1, 0, 1}} it adds and subtracts selected inputs exactly, at any
    magnitude. Compared with the NAC (W = tanh(Ŵ) ⊙ σ(M̂)) its gradient does
    not vanish near the solution. The paper pairs it with the `Sparsity`
    regularizer, ramped up by `LinearWarmupSchedule`.
{args}
    Example:

    >>> layer = NAU(1)
    >>> layer.build((None, 3))
    >>> layer.w.assign([[1.0], [-1.0], [0.0]])
    >>> layer(np.array([[5e6, 2e6, 7.0]]))  # [[3e6]]
    """.format(
        args=_SINGLE_WEIGHT_ARGS.format(
            w_initializer="initializer of W (default `NAUUniform()`:\n"
            "            U[−r, r], r = min(0.5, √3 · √(2 / (fan_in + fan_out)))).",
            kwargs_note=" (`name`, `dtype`, ...)",
        )
    )

    BOUNDS = {"w": NAU_BOUNDS}
    INPUT_PENALTY = {"w": "nau"}
    initial_state_value = 0.0

    @classmethod
    def _default_initializers(cls):
        return {"w": NAUUniform}

    def _apply(self, inputs, w):
        return keras.ops.matmul(inputs, w)


@keras.saving.register_keras_serializable(package="nalu_keras")
class NMU(_SingleWeightUnit):
    __doc__ = """The neural multiplication unit (NMU) of Madsen & Johansen (2020).

    Each output is a product of selected inputs, W kept in [0, 1]:

        y_j = Π_i (W_ij · x_i + 1 − W_ij)

    W_ij = 1 puts x_i in the product, W_ij = 0 leaves it out (a factor 1).
    Unlike the log-space NAC• it works on the inputs themselves, so negative
    inputs give the right sign and a zero input gives an exact zero; it
    cannot divide.

    Numerical safety (`ops.safe_product`): a product with a zero factor is
    exactly 0 even where the other factors overflow (a plain product of
    [1e30, 1e30, 0] is inf · 0 = NaN in float32), and no gradient is NaN;
    one that overflows is the largest finite value of its sign.
{args}
    Example:

    >>> layer = NMU(1)
    >>> layer.build((None, 3))
    >>> layer.w.assign([[1.0], [1.0], [0.0]])
    >>> layer(np.array([[-2.0, 3e5, 0.0]]))  # [[-6e5]]
    """.format(
        args=_SINGLE_WEIGHT_ARGS.format(
            w_initializer="initializer of W (default U[0.25, 0.75], as in the\n"
            "            paper's experiments).",
            kwargs_note="",
        )
    )

    BOUNDS = {"w": NMU_BOUNDS}
    INPUT_PENALTY = {"w": "nmu"}
    initial_state_value = 1.0

    @classmethod
    def _default_initializers(cls):
        return {"w": _nmu_initializer}

    def _apply(self, inputs, w):
        return nops.nmu_product(inputs, w)

    def formula_weights(self):
        """W, read by `formula` as the NMU product Π_i (W_ij x_i + 1 − W_ij):
        W = 1 puts x_i in the product, W = 0 leaves it out (not powers)."""
        return {"add": None, "mul": _to_numpy(self.W), "gate": None, "mul_form": "nmu"}


@keras.saving.register_keras_serializable(package="nalu_keras")
class GatedNAUNMU(_NALUGate, _BoundedUnit):
    """An NAU and an NMU, with separate weights, mixed by a NALU-style gate.

    The gated NAU/NMU of Madsen & Johansen (2020):

        a = x @ W_nau                        (NAU, W_nau ∈ [-1, 1])
        m_j = Π_i (W_nmu,ij · x_i + 1 − W_nmu,ij)   (NMU, W_nmu ∈ [0, 1])
        g = σ(x @ G)
        y = g ⊙ a + (1 − g) ⊙ m

    The gate has the same options as `NALU`'s. Where the gate is exactly 1
    the output is exactly `a` even if the product overflows (and where it is
    exactly 0, exactly `m`); no 0 · inf appears in the output or the
    gradients (`ops.gate_mix_product`).

    Args:
        units: positive int, dimensionality of the output.
        gate: `"input"` (default): g = σ(x @ G); `"abs_input"`:
            g = σ(|x| @ G); `"independent"`: g = σ(G), G of shape `(units,)`.
        gate_bias: bool, default False. Adds a learned bias `g_bias` inside σ
            for the `"input"` and `"abs_input"` gates.
        weight_bounds: how W_nau ∈ [-1, 1] and W_nmu ∈ [0, 1] are kept in
            range: `"project"` (default), `"clamp"` or `"none"`, as in `NAU`
            (with `"clamp"`, `bounds_regularizers` holds one `OutOfBounds`
            per weight).
        oob_strength: finite float >= 0, the initial strength of the
            out-of-bounds penalties (default 1.0; only with `"clamp"`).
        input_regularizer: None (default) or an `InputRegularizer`: R_z of
            the NAU (on W_nau) plus R_z of the NMU (on W_nmu), from the mean
            input of each batch, added with `add_loss`.
        w_nau_initializer: default `NAUUniform()`.
        w_nmu_initializer: default U[0.25, 0.75].
        g_initializer: default `"glorot_uniform"`; g_bias_initializer:
            default `"zeros"`.
        *_regularizer, *_constraint: per weight (`w_nau`, `w_nmu`, `g`,
            `g_bias`), default None (but see `weight_bounds`).
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape:
        N-D tensor with shape `(batch_size, ..., input_dim)`, N >= 2.

    Output shape:
        N-D tensor with shape `(batch_size, ..., units)`.

    Attributes:
        w_nau, w_nmu: the NAU and NMU weights, `(input_dim, units)`.
        g: the gate weight, `(input_dim, units)` or `(units,)`.
        g_bias: the gate bias, `(units,)` (only with `gate_bias=True`).

    Example:

    >>> layer = GatedNAUNMU(1, gate="independent")
    >>> layer.build((None, 2))
    >>> layer.w_nmu.assign([[1.0], [1.0]])
    >>> layer.g.assign([-100.0])        # gate -> 0: the NMU
    >>> layer(np.array([[-3.0, 4.0]]))  # [[-12.0]]
    """

    WEIGHTS = ("w_nau", "w_nmu", "g", "g_bias")
    DEFAULT_INITIALIZERS = {"g_bias": "zeros"}
    BOUNDS = {"w_nau": NAU_BOUNDS, "w_nmu": NMU_BOUNDS}
    INPUT_PENALTY = {"w_nau": "nau", "w_nmu": "nmu"}
    initial_state_value = 0.0
    ARITHMETIC_KIND = "gated"

    def __init__(self, units, gate="input", gate_bias=False, **kwargs):
        super().__init__(units, **kwargs)
        self._set_gate(gate, gate_bias)

    @classmethod
    def _default_initializers(cls):
        return {"w_nau": NAUUniform, "w_nmu": _nmu_initializer}

    def build_weights(self, input_dim):
        shape = (input_dim, self.units)
        self.w_nau = self.add_bounded_weight("w_nau", shape)
        self.w_nmu = self.add_bounded_weight("w_nmu", shape)
        self._add_gate_weights(shape)
        self.track_regularizer_strengths()

    @property
    def W_nau(self):
        return self.applied("w_nau")

    @property
    def W_nmu(self):
        return self.applied("w_nmu")

    # The gate is NALU's (`_NALUGate`), on the same attributes (gate, g,
    # gate_bias, g_bias): gate_logits, gate_activation, gate_value.

    def call(self, inputs):
        w_nau, w_nmu = self.W_nau, self.W_nmu
        self.add_input_penalty(inputs, {"w_nau": w_nau, "w_nmu": w_nmu})
        a = keras.ops.matmul(inputs, w_nau)
        factors = nops.nmu_factors(inputs, w_nmu)
        return nops.gate_mix_product(self.gate_value(inputs), a, factors)

    def effective_weights(self):
        weights = {"W_nau": _to_numpy(self.W_nau), "W_nmu": _to_numpy(self.W_nmu)}
        return {**weights, **self._gate_effective_weights()}

    def formula_weights(self):
        """W_nau (the sum), W_nmu (read as the NMU product
        Π_i (W_ij x_i + 1 − W_ij)) and the gate, for `formula`."""
        weights = self.effective_weights()
        return {
            "add": weights["W_nau"],
            "mul": weights["W_nmu"],
            "gate": weights.get("gate"),
            "mul_form": "nmu",
            "gate_text": self.gate_expressions(),
        }

    def get_config(self):
        config = super().get_config()
        config.update(gate=self.gate, gate_bias=self.gate_bias)
        return config
