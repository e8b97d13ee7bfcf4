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
