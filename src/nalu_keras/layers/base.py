"""What every arithmetic unit shares: argument checks, input handling, weights."""

from __future__ import annotations

import dataclasses
import numbers

import keras
import numpy as np

from nalu_keras import regularizers as nregs

# The shared argument checks; the layer modules import them from here.
from nalu_keras.validation import (  # noqa: F401
    check_bool,
    check_choice,
    check_non_negative,
    check_optional_positive,
    check_positive,
    check_units,
)

ARITHMETIC_KINDS = ("additive", "multiplicative", "gated")
#: How `formula` writes a multiplicative path: "power" is Π_i x_i^{W_ij}
#: (log-space units, NPUs); "nmu" is Π_i (W_ij x_i + 1 − W_ij) (NMU).
MUL_FORMS = ("power", "nmu")


@dataclasses.dataclass(frozen=True)
class RoundedWeights:
    """Effective weights rounded to {−1, 0, 1}, with how far they were.

    Attributes:
        weights: name → array rounded to the nearest of −1, 0, 1.
        deviation: name → the largest |W − round(W)| of that weight.
    """

    weights: dict
    deviation: dict

    @property
    def max_deviation(self):
        """The largest deviation over all weights (0.0 if there are none)."""
        return max(self.deviation.values(), default=0.0)


def _names(argument, names, prefix, count):
    if names is None:
        return [f"{prefix}{i}" for i in range(count)]
    names = [str(n) for n in names]
    if len(names) != count:
        raise ValueError(
            f"`{argument}` must have {count} entries, got {len(names)}: {names!r}."
        )
    return names


def _number(value, precision):
    return f"{float(value):.{precision}g}"


def _coefficient(value, tolerance, precision):
    """An int if `value` is within `tolerance` of one, else a rounded float."""
    nearest = float(np.rint(value))
    if abs(float(value) - nearest) <= tolerance:
        return int(nearest)
    return float(_number(value, precision))


def _sum_text(column, names, tolerance, precision):
    text = ""
    for name, value in zip(names, column):
        c = _coefficient(value, tolerance, precision)
        if c == 0:
            continue
        term = name if abs(c) == 1 else f"{_number(abs(c), precision)}*{name}"
        if not text:
            text = term if c > 0 else f"-{term}"
        else:
            text += f" + {term}" if c > 0 else f" - {term}"
    return text or "0"


def _product_text(column, names, tolerance, precision):
    numerator, denominator = [], []
    for name, value in zip(names, column):
        c = _coefficient(value, tolerance, precision)
        if c == 0:
            continue
        factor = name if abs(c) == 1 else f"{name}^{_number(abs(c), precision)}"
        (numerator if c > 0 else denominator).append(factor)
    text = " * ".join(numerator) or "1"
    if len(denominator) == 1:
        text += f" / {denominator[0]}"
    elif denominator:
        text += f" / ({' * '.join(denominator)})"
    return text


def _affine_text(weight, name, precision):
    """The NMU factor W·x + 1 − W as text, e.g. "(0.7*x0 + 0.3)"."""
    slope = f"-{name}" if weight == -1 else f"{_number(weight, precision)}*{name}"
    constant = 1.0 - float(weight)
    if constant < 0:
        return f"({slope} - {_number(-constant, precision)})"
    return f"({slope} + {_number(constant, precision)})"


def _nmu_product_text(column, names, tolerance, precision):
    """Π_i (W_i x_i + 1 − W_i): W = 1 gives the input itself, W = 0 leaves
    it out; other weights are written as the factor they are."""
    factors = []
    for name, value in zip(names, column):
        c = _coefficient(value, tolerance, precision)
        if c == 0:
            continue
        if c == 1:
            factors.append(name)
            continue
        # An integer (within tolerance) as that integer, else the raw value.
        factors.append(_affine_text(c if isinstance(c, int) else value, name, precision))
    return " * ".join(factors) or "1"


class ArithmeticUnit(keras.layers.Layer):
    """Base class of the arithmetic units: a map from the last axis to `units`.

    Subclasses declare their weights in `WEIGHTS` (names from the papers) and
    implement `build_weights(input_dim)` and `call(inputs)`. The base class
    provides the checks, the per-weight initializer / regularizer / constraint
    arguments, `compute_output_shape`, `get_config` and `effective_weights`.

    Class attributes:
        WEIGHTS: the names of the weights this unit may create.
        DEFAULT_INITIALIZERS: initializer per weight name.
        initial_state_value: the neutral recurrent state (0 for additive units,
            1 for multiplicative ones), used by `ArithmeticCell`.
        ARITHMETIC_KIND: how `formula` reads the unit: "additive" (y = x @ W),
            "multiplicative" (y = Π x^W), "gated" (a gate between an additive
            and a multiplicative path), or None to derive it from
            `initial_state_value`.
    """

    WEIGHTS: tuple = ()
    DEFAULT_INITIALIZERS: dict = {}
    initial_state_value = 0.0
    ARITHMETIC_KIND = None

    def __init__(self, units, **kwargs):
        options = {
            key: kwargs.pop(key)
            for key in list(kwargs)
            if key.rpartition("_")[0] in self.WEIGHTS
            and key.rpartition("_")[2] in ("initializer", "regularizer", "constraint")
        }
        super().__init__(**kwargs)
        self.units = check_units(units)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self._initializers = {}
        self._regularizers = {}
        self._constraints = {}
        for name in self.WEIGHTS:
            default = self.DEFAULT_INITIALIZERS.get(name, "glorot_uniform")
            self._initializers[name] = keras.initializers.get(
                options.get(f"{name}_initializer", default)
            )
            self._regularizers[name] = keras.regularizers.get(
                options.get(f"{name}_regularizer")
            )
            self._constraints[name] = keras.constraints.get(
                options.get(f"{name}_constraint")
            )

    # -- weights -----------------------------------------------------------
    def add_unit_weight(self, name, shape):
        """Create the weight `name` with its configured initializer etc."""
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=self._initializers[name],
            regularizer=self._regularizers[name],
            constraint=self._constraints[name],
            trainable=True,
        )

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(
                f"{type(self).__name__} expects inputs of rank >= 2 "
                f"(batch, ..., features); got shape {tuple(input_shape)}."
            )
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last axis of the input to {type(self).__name__} must be "
                f"known; got shape {tuple(input_shape)}."
            )
        self.input_dim = int(input_dim)
        self.build_weights(self.input_dim)
        # The strength variables of the `*_regularizer` arguments become
        # weights of the layer, so a schedule reaches a compiled train step.
        # This adds to what `build_weights` tracked (e.g. the NAU's bounds
        # and input regularizers); each variable is tracked once.
        nregs.track_strengths(self, list(self._regularizers.values()))
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: self.input_dim})

    def build_weights(self, input_dim):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    # -- finding units -------------------------------------------------------
    @classmethod
    def instances_in(cls, model_or_layers):
        """The instances of `cls` in a model, a layer or a list of layers.

        Searches nested layers too (a unit inside an `ArithmeticCell` inside
        a `keras.layers.RNN` is found), in order, each layer once.
        `ArithmeticUnit.instances_in(model)` lists every arithmetic unit;
        `iNALU.instances_in(model)` only the iNALUs.
        """
        if isinstance(model_or_layers, keras.layers.Layer):
            roots = [model_or_layers]
        else:
            roots = list(model_or_layers)
        found, seen = [], set()
        for root in roots:
            if not isinstance(root, keras.layers.Layer):
                raise ValueError(
                    f"Expected a Keras model, layer or list of layers; got {root!r}."
                )
            for layer in root._flatten_layers(include_self=True, recursive=True):
                if isinstance(layer, cls) and id(layer) not in seen:
                    seen.add(id(layer))
                    found.append(layer)
        return found

    # -- reading the learned formula ----------------------------------------
    def effective_weights(self):
        """The matrices the unit actually applies, as numpy arrays by name."""
        raise NotImplementedError

    def arithmetic_weights(self):
        """The effective weights that encode the arithmetic, gates excluded.

        `effective_weights()` minus the entries whose name starts with
        "gate" (a gate chooses between paths or inputs; it is not an
        operand weight). These are the matrices that should reach −1, 0 or 1
        (0 or 1 for NMU-style units); `nalu_keras.evaluation.sparsity_error`
        measures how far they are.
        """
        return {
            name: value
            for name, value in self.effective_weights().items()
            if not name.startswith("gate")
        }

    @property
    def arithmetic_kind(self):
        """How `formula` reads this unit: "additive", "multiplicative" or "gated".

        The class attribute `ARITHMETIC_KIND` when a unit declares it;
        otherwise derived from `initial_state_value` (1 → "multiplicative",
        else "additive").
        """
        if self.ARITHMETIC_KIND is not None:
            return check_choice("ARITHMETIC_KIND", self.ARITHMETIC_KIND, ARITHMETIC_KINDS)
        return "multiplicative" if float(self.initial_state_value) == 1.0 else "additive"

    def formula_weights(self):
        """The matrices `formula` prints, as numpy arrays.

        A dict with "add" (additive path, `(in, out)`), "mul" (weights of
        the multiplicative path, `(in, out)`) and "gate" (per-output gate
        in [0, 1], 1 = additive; None when the gate depends on the input).
        Optional keys: "mul_form" (`"power"`, the default: the path is
        Π_i x_i^{W_ij}; `"nmu"`: it is Π_i (W_ij x_i + 1 − W_ij)) and
        "gate_text" (one string per output describing an input-dependent
        gate, e.g. "σ(x @ G[:, 0])").
        The default reads `effective_weights()`: "W" for the additive or
        multiplicative unit; "W" and "W_mul" (or "W" twice when tied) and
        "gate" for a gated one. Units with other weights override this.
        """
        weights = self.effective_weights()
        kind = self.arithmetic_kind
        if "W" not in weights:
            raise NotImplementedError(
                f"{type(self).__name__} has no effective weight 'W' (it has "
                f"{sorted(weights)}); it must override `formula_weights` to be "
                "read as a formula."
            )
        if kind == "additive":
            return {"add": weights["W"], "mul": None, "gate": None}
        if kind == "multiplicative":
            return {"add": None, "mul": weights["W"], "gate": None}
        return {
            "add": weights["W"],
            "mul": weights.get("W_mul", weights["W"]),
            "gate": weights.get("gate"),
        }

    def rounded_weights(self, tolerance=None):
        """The effective weights rounded to the nearest of {−1, 0, 1}.

        Args:
            tolerance: None (default) or a number >= 0. When given, a
                ValueError is raised if any entry is farther than
                `tolerance` from its rounded value (naming the weight).

        Returns:
            A `RoundedWeights` with `weights` (name → rounded array, the
            same names as `effective_weights()`, gates included: a gate in
            [0, 1] rounds to 0 or 1), `deviation` (name → the largest
            |W − round(W)|) and `max_deviation`.

        Example:

        >>> unit.rounded_weights().weights["W"]      # e.g. [[1.], [-1.]]
        >>> unit.rounded_weights().max_deviation     # e.g. 3e-6
        """
        if tolerance is not None and (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, numbers.Real)
            or not tolerance >= 0
        ):
            raise ValueError(
                f"Received an invalid value for argument `tolerance`, expected "
                f"None or a number >= 0, got {tolerance!r}."
            )
        rounded, deviation = {}, {}
        for name, value in self.effective_weights().items():
            value = np.asarray(value, dtype=np.float64)
            nearest = np.clip(np.rint(value), -1.0, 1.0)
            rounded[name] = nearest
            deviation[name] = float(np.max(np.abs(value - nearest))) if value.size else 0.0
            if tolerance is not None and deviation[name] > tolerance:
                raise ValueError(
                    f"The weight {name!r} of {self.name} is {deviation[name]:.3g} "
                    f"away from {{-1, 0, 1}}, more than tolerance={tolerance}."
                )
        return RoundedWeights(rounded, deviation)

    def formula(self, input_names=None, output_names=None, tolerance=0.05, precision=3):
        """The learned function as text, one line per output.

        Additive units give sums ("y0 = x0 + x3 - x5"), multiplicative units
        products ("y0 = x0 * x1 / x2"; for an NMU, whose factors are
        W·x + 1 − W, weights 1 give plain products "y0 = x0 * x1" and other
        weights their factor, "y0 = (0.7*x0 + 0.3) * x1").

        Gated units (NALU, G-NALU, iNALU, gated NAU/NMU) show both paths
        and the gate. A gate that does not depend on the input (one value
        g_j per output, e.g. σ(g_j)) is printed as its value,
        "y0 = 0.7*(x0 + x1) + 0.3*(x0 * x1)"; when it is within `tolerance`
        of 1 (or 0) only the additive (or multiplicative) path is printed.
        An input-dependent gate is written g0 and described:
        "y0 = g0*(x0 + x1) + (1 - g0)*(x0 * x1), with input-dependent gate
        g0 = σ(x @ G[:, 0])".

        A weight within `tolerance` of an integer is printed as that integer
        (0 drops the term); others with `precision` significant digits
        ("0.5*x1", "x0^0.5").

        Args:
            input_names: None (x0, x1, ...) or one name per input.
            output_names: None (y0, y1, ...) or one name per output.
            tolerance: how far from an integer a weight may be to be read
                as that integer (default 0.05).
            precision: significant digits of the other numbers.

        Returns:
            A string, the output lines joined by newlines.
        """
        parts = self.formula_weights()
        reference = next(w for w in (parts["add"], parts["mul"]) if w is not None)
        n_in, n_out = np.shape(reference)
        input_names = _names("input_names", input_names, "x", n_in)
        output_names = _names("output_names", output_names, "y", n_out)
        kind = self.arithmetic_kind
        gate = parts.get("gate")
        gate_text = parts.get("gate_text")
        mul_form = check_choice("mul_form", parts.get("mul_form", "power"), MUL_FORMS)
        product_text = _nmu_product_text if mul_form == "nmu" else _product_text
        if kind == "gated" and (parts["add"] is None or parts["mul"] is None):
            raise ValueError(
                f"{type(self).__name__} is gated; its `formula_weights` must "
                "give both an 'add' and a 'mul' matrix."
            )
        lines = []
        for j in range(n_out):
            add = mul = None
            if parts["add"] is not None:
                add = _sum_text(parts["add"][:, j], input_names, tolerance, precision)
            if parts["mul"] is not None:
                mul = product_text(parts["mul"][:, j], input_names, tolerance, precision)
            if kind != "gated":
                text = add if kind == "additive" else mul
            elif gate is None:
                text = f"g{j}*({add}) + (1 - g{j})*({mul}), with input-dependent gate g{j}"
                if gate_text is not None:
                    text += f" = {gate_text[j]}"
            elif gate[j] >= 1.0 - tolerance:
                text = add
            elif gate[j] <= tolerance:
                text = mul
            else:
                g = _number(gate[j], precision)
                h = _number(1.0 - gate[j], precision)
                text = f"{g}*({add}) + {h}*({mul})"
            lines.append(f"{output_names[j]} = {text}")
        return "\n".join(lines)

    # -- serialization ------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        for name in self.WEIGHTS:
            config[f"{name}_initializer"] = keras.initializers.serialize(
                self._initializers[name]
            )
            config[f"{name}_regularizer"] = keras.regularizers.serialize(
                self._regularizers[name]
            ) if self._regularizers[name] is not None else None
            config[f"{name}_constraint"] = keras.constraints.serialize(
                self._constraints[name]
            ) if self._constraints[name] is not None else None
        return config
