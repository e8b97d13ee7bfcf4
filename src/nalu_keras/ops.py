"""The numeric core shared by every unit, written with `keras.ops` only.

Each formula of the arithmetic units lives here exactly once; layers, recurrent
cells and the training code call these functions instead of repeating them.
All functions accept tensors of any rank: the last axis is the feature axis.
"""

from __future__ import annotations

import math

from keras import ops

LOG_MODES = ("add", "clamp")


def nac_weight(w_hat, m_hat):
    """The NAC weight matrix W = tanh(Ŵ) ⊙ σ(M̂), biased toward {-1, 0, 1}."""
    return ops.tanh(w_hat) * ops.sigmoid(m_hat)


def log_abs(x, epsilon, log_mode="add"):
    """A logarithm of |x| that stays finite at x = 0.

    Args:
        x: input tensor.
        epsilon: a small positive constant.
        log_mode: `"add"` computes log(|x| + ε) (the NALU paper);
            `"clamp"` computes log(max(|x|, ε)) (iNALU), which is exact for
            |x| >= ε.
    """
    magnitude = ops.abs(x)
    eps = ops.cast(epsilon, magnitude.dtype)
    if log_mode == "add":
        return ops.log(magnitude + eps)
    if log_mode == "clamp":
        return ops.log(ops.maximum(magnitude, eps))
    raise ValueError(
        f"Unknown log_mode {log_mode!r}; expected one of {LOG_MODES}."
    )


def log_space_exponent(x, w, epsilon, log_mode="add", exp_clip=None):
    """The exponent of the multiplicative path: log|x| @ W, optionally clipped.

    `exp(log_space_exponent(...))` is Π_i |x_i|^{W_ij}, the product form of a
    NAC in log space. With `exp_clip=ω` the exponent is capped at ω, so the
    product never exceeds e^ω.
    """
    z = ops.matmul(log_abs(x, epsilon, log_mode), w)
    if exp_clip is not None:
        z = ops.minimum(z, ops.cast(exp_clip, z.dtype))
    return z


def log_space_product(x, w, epsilon, log_mode="add", exp_clip=None):
    """The multiplicative NAC: exp(log(|x| + ε) @ W).

    The result depends on |x| only: the sign of negative inputs is lost
    ((-2)·3 gives +6). This is the behaviour of the NALU paper.
    """
    return ops.exp(log_space_exponent(x, w, epsilon, log_mode, exp_clip))


def gate_mix(g, a, z):
    """The NALU output g ⊙ a + (1 − g) ⊙ exp(z), with no 0·inf.

    Args:
        g: the gate, in [0, 1], broadcastable against `a`.
        a: the additive path.
        z: the exponent of the multiplicative path (the multiplicative path
            itself is exp(z)); passing the exponent lets this function avoid
            evaluating an overflowing exp where its weight is exactly 0.

    Where g == 1 the result is exactly `a`, even if exp(z) overflows to inf;
    where g == 0 it is exactly exp(z), even if `a` is inf. Gradients stay
    finite in those cases too: the unused branch is replaced by a harmless
    constant *before* the operation that would overflow (the "double where"
    pattern), so no inf · 0 appears in the backward pass either.
    Where 0 < g < 1 and exp(z) overflows, the result is inf, as the formula
    says.
    """
    one_minus_g = 1.0 - g
    add_used = ops.not_equal(g, 0.0)
    mul_used = ops.not_equal(one_minus_g, 0.0)
    a_safe = ops.where(add_used, a, ops.zeros_like(a))
    z_safe = ops.where(mul_used, z, ops.zeros_like(z))
    return g * a_safe + one_minus_g * ops.exp(z_safe)


def golden_tanh(x):
    """tanh with base φ = (1 + √5) / 2: (φ^{2x} − 1) / (φ^{2x} + 1) = tanh(x ln φ)."""
    return ops.tanh(x * math.log((1.0 + math.sqrt(5.0)) / 2.0))


def golden_sigmoid(x):
    """The logistic function with base φ: 1 / (1 + φ^{−x}) = σ(x ln φ)."""
    return ops.sigmoid(x * math.log((1.0 + math.sqrt(5.0)) / 2.0))


def straight_through_clip(x, min_value, max_value):
    """clip(x, min, max) in the forward pass, the identity in the backward pass.

    Computed as x + stop_gradient(clip(x) − x): the value is the clipped one,
    but the gradient with respect to x is 1 everywhere, also outside
    [min, max], so a parameter that left the interval can be pulled back.
    (A plain `ops.clip` has gradient 0 outside the interval.)
    """
    clipped = ops.clip(x, min_value, max_value)
    return x + ops.stop_gradient(clipped - x)


def sign_recovery(x, w):
    """The sign of the product Π_i x_i^{W_ij} (iNALU, Schlör et al. 2020).

    s_j = clip( Π_i ( sign(x_i) · |W_ij| + 1 − |W_ij| ), −1, 1 ).

    With |W_ij| = 1 the factor is sign(x_i) (the input takes part in the
    product with its sign, and a 0 input makes the product 0); with W_ij = 0
    it is 1 (the input is left out). It is the NMU product of sign(x) with
    weights |W| (see `nmu_product`), clipped. Shapes: `x` `(..., in)`, `w`
    `(in, out)`, result `(..., out)`.
    """
    return ops.clip(nmu_product(ops.sign(x), ops.abs(w)), -1.0, 1.0)


def signed_gate_mix(g, a, z, sign):
    """g ⊙ a + (1 − g) ⊙ s ⊙ exp(z), with no 0·inf (the iNALU output).

    `gate_mix` is the special case s = 1; this version multiplies the
    multiplicative path by a sign s in [−1, 1] (see `sign_recovery`). The same
    "double where" keeps the output and the gradients finite where g is
    exactly 0 or 1 and the unused path overflows.
    """
    one_minus_g = 1.0 - g
    a_safe = ops.where(ops.not_equal(g, 0.0), a, ops.zeros_like(a))
    z_safe = ops.where(ops.not_equal(one_minus_g, 0.0), z, ops.zeros_like(z))
    return g * a_safe + one_minus_g * sign * ops.exp(z_safe)


def saturation_penalty(p, threshold=20.0):
    """mean(max(t − |p|, 0)): pushes parameters to |p| >= t (iNALU, t = 20).

    Saturated pre-activations make tanh(Ŵ) ⊙ σ(M̂) exactly −1, 0 or 1.
    """
    return ops.mean(ops.relu(ops.cast(threshold, p.dtype) - ops.abs(p)))


def npu_power(x, w_re, w_im=None, gate=None, epsilon=1e-7):
    """The neural power unit (Heim et al. 2020): the real part of Π_i x_i^{W_ij}.

        r = ĝ ⊙ (|x| + ε) + (1 − ĝ),   k = ĝ ⊙ π·[x < 0]
        y = exp(log(r) @ W_re − k @ W_im) ⊙ cos(k @ W_re + log(r) @ W_im)

    This is Re(exp((log r + i k) @ (W_re + i W_im))): x < 0 is written as
    |x| e^{iπ}, so a negative base with a fractional exponent gives the real
    part of the principal complex power ((−8)^{1/3} → 2 cos(π/3) = 1), and
    integer exponents give the exact signed result ((−2)^1 · 3^1 = −6).

    Args:
        x: inputs `(..., in)`.
        w_re: real exponents `(in, out)`.
        w_im: imaginary exponents `(in, out)`, or None for W_im = 0
            (the RealNPU: y = exp(log(r) @ W_re) ⊙ cos(k @ W_re)).
        gate: the relevance gate ĝ in [0, 1], shape `(in,)`, or None for
            ĝ = 1 (the naive NPUs: r = |x| + ε, k = π·[x < 0]).
        epsilon: ε added to |x|.
    """
    magnitude = ops.abs(x) + ops.cast(epsilon, x.dtype)
    k = ops.cast(ops.less(x, 0.0), x.dtype) * math.pi
    if gate is not None:
        magnitude = gate * magnitude + (1.0 - gate)
        k = gate * k
    log_r = ops.log(magnitude)
    if w_im is None:
        return ops.exp(ops.matmul(log_r, w_re)) * ops.cos(ops.matmul(k, w_re))
    return ops.exp(ops.matmul(log_r, w_re) - ops.matmul(k, w_im)) * ops.cos(
        ops.matmul(k, w_re) + ops.matmul(log_r, w_im)
    )


# -- NAU / NMU (Madsen & Johansen 2020) ---------------------------------------


def nau_init_limit(fan_in, fan_out, cap=0.5):
    """r of the NAU initialization U[−r, r]: min(cap, √3 · √(2 / (fan_in + fan_out))).

    U[−r, r] has variance r² / 3, so below the cap this is the Glorot
    variance 2 / (fan_in + fan_out); the cap (0.5 in the paper's code) keeps
    the weights away from the ±1 solutions at the start. Plain Python floats.
    """
    return min(float(cap), math.sqrt(3.0) * math.sqrt(2.0 / (fan_in + fan_out)))


def nmu_factors(x, w):
    """The factors W_ij · x_i + 1 − W_ij of the NMU product, shape `(..., in, out)`.

    With W_ij = 1 the factor is exactly x_i (negative or zero alike); with
    W_ij = 0 it is exactly 1 (the input is left out).
    """
    return ops.expand_dims(x, -1) * w + (1.0 - w)


def nmu_product(x, w):
    """The NMU: y_j = Π_i (W_ij · x_i + 1 − W_ij). `x` `(..., in)`, `w` `(in, out)`."""
    return ops.prod(nmu_factors(x, w), axis=-2)


def gate_mix_product(g, a, factors):
    """g ⊙ a + (1 − g) ⊙ Π_i factors_i, with no 0·inf (e.g. a gated NAU/NMU).

    The product counterpart of `gate_mix`. It takes the *factors* of the
    multiplicative path, shape `(..., in, out)` (see `nmu_factors`), not the
    product: where g == 1 every factor of that output is replaced by 1 before
    the product is formed, so an overflowing product (and its gradient, which
    holds products of the other factors) never meets the zero weight 1 − g.
    Where g == 1 the result is exactly `a`; where g == 0 it is exactly the
    product, even if `a` is inf.
    """
    one_minus_g = 1.0 - g
    add_used = ops.not_equal(g, 0.0)
    # (1 − g) broadcast to the output's shape, then a length-1 input axis.
    mul_used = ops.expand_dims(
        ops.not_equal(one_minus_g * ops.ones_like(a), 0.0), -2
    )
    a_safe = ops.where(add_used, a, ops.zeros_like(a))
    factors_safe = ops.where(mul_used, factors, ops.ones_like(factors))
    return g * a_safe + one_minus_g * ops.prod(factors_safe, axis=-2)


def golden_nac_weight(w_hat, m_hat):
    """The G-NALU weight tanh_φ(Ŵ) ⊙ σ_φ(M̂), with the golden-ratio base φ."""
    return golden_tanh(w_hat) * golden_sigmoid(m_hat)


# -- penalties (the regularizers call these) ----------------------------------

SPARSITY_SHAPES = ("linear", "squared")
INPUT_PENALTY_UNITS = ("nau", "nmu")


def sparsity_penalty(w, shape="linear"):
    """Madsen & Johansen's sparsity penalty, 0 exactly at W ∈ {−1, 0, 1}.

    `"linear"`: mean(min(|W|, 1 − |W|)) (their experiments);
    `"squared"`: mean(W² (1 − |W|)²). For an NMU (W in [0, 1]) |W| = W.
    """
    magnitude = ops.abs(w)
    if shape == "linear":
        return ops.mean(ops.minimum(magnitude, 1.0 - magnitude))
    if shape == "squared":
        return ops.mean(ops.square(w) * ops.square(1.0 - magnitude))
    raise ValueError(
        f"Unknown sparsity shape {shape!r}; expected one of {SPARSITY_SHAPES}."
    )


def out_of_bounds_penalty(w, low=-1.0, high=1.0):
    """mean(relu(low − W) + relu(W − high)): 0 inside [low, high], linear outside.

    With [−1, 1] this is mean(relu(|W| − 1)), the NAU's penalty; with [0, 1]
    it is the NMU's.
    """
    low = ops.cast(low, w.dtype)
    high = ops.cast(high, w.dtype)
    return ops.mean(ops.relu(low - w) + ops.relu(w - high))


def input_penalty(w, x_mean, unit):
    """The input regularizer R_z of Madsen & Johansen, from the mean input x̄.

    `unit="nmu"`: mean_ij (1 − W_ij)(1 − x̄_i)² (a left-out input, W = 0,
    is pushed to x̄ = 1, the neutral element of a product);
    `unit="nau"`: mean_ij (1 − |W_ij|) x̄_i² (a left-out input is pushed to
    x̄ = 0, the neutral element of a sum). `w` `(in, out)`, `x_mean` `(in,)`.
    """
    x_col = ops.expand_dims(ops.cast(x_mean, w.dtype), -1)
    if unit == "nmu":
        return ops.mean((1.0 - w) * ops.square(1.0 - x_col))
    if unit == "nau":
        return ops.mean((1.0 - ops.abs(w)) * ops.square(x_col))
    raise ValueError(
        f"Unknown unit {unit!r}; expected one of {INPUT_PENALTY_UNITS}."
    )


def l1_penalty(p):
    """Σ |p|, the L1 norm used (times β) by the NPU paper."""
    return ops.sum(ops.abs(p))
