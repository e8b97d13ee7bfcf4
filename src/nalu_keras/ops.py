"""The numeric core shared by every unit, written with `keras.ops` only.

Each formula of the arithmetic units lives here exactly once; layers, recurrent
cells and the training code call these functions instead of repeating them.
All functions accept tensors of any rank: the last axis is the feature axis.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import backend, ops

LOG_MODES = ("add", "clamp")


# -- numerical safety helpers --------------------------------------------------
#
# Where an intermediate overflows, the backward pass of a naive formula meets
# inf · 0 (an infinite cotangent times a derivative that is exactly 0) or
# inf − inf, and a finite result gets NaN gradients. The functions below keep
# every forward value exactly what the plain formula gives (and the forward
# pass as cheap); they only change how the gradient is formed: each partial
# derivative is applied to the cotangent as one product of finite numbers,
# so an exact 0 stays an exact 0 and an overflowing gradient becomes a large
# value of the right sign (±inf or the largest finite number), never NaN.


def _finfo(dtype):
    """(largest finite, smallest normal) of a float dtype, bfloat16 included."""
    name = backend.standardize_dtype(dtype)
    if name == "bfloat16":
        return 3.3895313892515355e38, 1.1754943508222875e-38
    info = np.finfo(name)
    return float(info.max), float(info.tiny)


def _finite(x):
    """x with NaN replaced by 0 and ±inf by ± the largest finite value."""
    largest, _ = _finfo(x.dtype)
    return ops.clip(ops.where(ops.isnan(x), ops.zeros_like(x), x), -largest, largest)


def _no_gradient_where(condition, x):
    """x, with its gradient cut where `condition` holds (a where, not a product).

    Use it where the derivative of the next operation is exactly 0 anyway:
    the gradient becomes an exact 0 instead of (cotangent · 0), which is NaN
    when the cotangent overflowed to inf.
    """
    return ops.where(condition, ops.stop_gradient(x), x)


def _abs(x):
    """|x|, with gradient exactly 0 at x = 0 on every backend.

    That is the symmetric subgradient of |x| at its kink and what TensorFlow
    and PyTorch give (JAX gives 1 there). It is formed with a where, so an
    overflowing cotangent at x = 0 (e.g. y · W / ε of a large product) gives
    0, not inf · 0 = NaN.
    """
    return _no_gradient_where(ops.equal(x, 0.0), ops.abs(x))


def _unbroadcast(grad, x):
    """`grad` summed to the shape of `x`, undoing the broadcasting of x."""
    extra = len(grad.shape) - len(x.shape)
    if extra > 0:
        grad = ops.sum(grad, axis=tuple(range(extra)))
    axes = tuple(
        i for i, (d, g) in enumerate(zip(x.shape, grad.shape)) if d == 1 and g != 1
    )
    if axes:
        grad = ops.sum(grad, axis=axes, keepdims=True)
    return grad


def _with_gradient(forward, backward, *args):
    """The output of forward(*args), with the gradient backward(cotangent, saved, *args).

    `forward` returns (output, saved); `saved` (anything, e.g. the output or
    intermediate results) is passed to `backward`, which returns one
    gradient per argument, possibly broadcast (they are summed back to each
    argument's shape). Built on `keras.ops.custom_gradient`, so it works on
    every backend; only first derivatives are defined.
    """
    # Tensors, not variables: TensorFlow's custom gradient would otherwise
    # treat a variable read inside as a captured variable.
    args = tuple(
        ops.cast(a, a.dtype) if isinstance(a, keras.Variable) else ops.convert_to_tensor(a)
        for a in args
    )

    @ops.custom_gradient
    def function(*inputs):
        output, saved = forward(*inputs)

        def grad(*upstream_args, upstream=None):
            if upstream is None:
                (upstream,) = upstream_args
            grads = backward(upstream, saved, *inputs)
            return tuple(_unbroadcast(g, x) for g, x in zip(grads, inputs))

        return output, grad

    return function(*args)


def _plain(function):
    """A `forward` for `_with_gradient` that saves its output."""

    def forward(*inputs):
        output = function(*inputs)
        return output, output

    return forward


def _multiply(u, v):
    """u ⊙ v, whose gradients cotangent · v and cotangent · u use v and u
    made finite: where one factor overflowed to inf and the cotangent is 0
    (e.g. another output of the same layer, which the loss does not use),
    the other factor's gradient is 0, not 0 · inf = NaN."""
    return _with_gradient(
        _plain(lambda u, v: u * v),
        lambda ct, y, u, v: (ct * _finite(v), ct * _finite(u)),
        u,
        v,
    )


def _mix(g, a, m):
    """g ⊙ a + (1 − g) ⊙ m, with ∂/∂g = a − m, ∂/∂a = g, ∂/∂m = 1 − g each
    applied to the cotangent as one product of finite numbers (see
    `_multiply`). The value is exactly g ⊙ a + (1 − g) ⊙ m."""
    return _with_gradient(
        _plain(lambda g, a, m: g * a + (1.0 - g) * m),
        lambda ct, y, g, a, m: (ct * _finite(a - m), ct * g, ct * (1.0 - g)),
        g,
        a,
        m,
    )


def _dtype_faithful(function, derivative, x):
    """function(x), computed with `keras.ops`, in the dtype of `x`.

    On the JAX backend Keras computes `tanh`, `cos` and `sin` of float64
    tensors in float32. Its backward pass then casts the float64 cotangent to float32
    first, so a cotangent above ~3.4e38 becomes inf (and inf · derivative 0
    gives NaN). Where that happens the value is cast back to the dtype of `x`
    and the gradient cotangent · derivative(x) is formed in that dtype. Where
    Keras keeps the dtype this is `function(x)` unchanged.
    """
    y = function(x)
    if backend.standardize_dtype(y.dtype) == backend.standardize_dtype(x.dtype):
        return y
    return _with_gradient(
        _plain(lambda x: ops.cast(function(x), x.dtype)),
        lambda ct, y, x: (ct * ops.cast(derivative(x), x.dtype),),
        x,
    )


def exp(z):
    """exp(z), whose gradient cotangent · exp(z) uses exp(z) made finite.

    The value is `ops.exp(z)`, +inf where it overflows. The plain backward
    pass multiplies the cotangent by that inf, so a zero cotangent (an output
    the loss does not use, or weights by 0) gives 0 · inf = NaN, which then
    spreads through the shared inputs and weights to the finite outputs.
    Here it gives 0; a non-zero cotangent gives a large value of the right
    sign. Where exp(z) is finite the gradient is the usual one.
    """
    return _with_gradient(_plain(ops.exp), lambda ct, y, z: (ct * _finite(y),), z)


def tanh(x):
    """tanh(x) in the dtype of `x`, with the gradient cotangent · (1 − tanh²).

    The value is `ops.tanh(x)` (cast back to the dtype of `x`: on the JAX
    backend Keras computes float64 tanh in float32, see `_dtype_faithful`).
    The gradient is formed as one product, in the dtype of `x`, and is an
    exact 0 where 1 − tanh² is 0 (saturation): JAX's own rule,
    (g + g · t)(1 − t), gives NaN for an infinite cotangent g at t = 0 and
    at t = ±1.
    """

    def backward(ct, t, x):
        slope = 1.0 - ops.square(t)
        return (ops.where(ops.equal(slope, 0.0), ops.zeros_like(ct), ct * slope),)

    return _with_gradient(_plain(lambda x: ops.cast(ops.tanh(x), x.dtype)), backward, x)


def cos(x):
    """cos in the dtype of `x` (see `_dtype_faithful`)."""
    return _dtype_faithful(ops.cos, lambda u: -ops.sin(u), x)


def _saturating_product(t, s):
    """t ⊙ s for t = tanh(·), s = σ(·), with no 0 · inf in the gradient.

    Where the float derivative of a factor's own activation is exactly 0
    (tanh at ±1, σ at 0 or 1), or the other factor is exactly 0, the gradient
    reaching that factor's pre-activation is exactly 0 in the plain formula
    too; it is cut here with a where, so an overflowing cotangent of the
    product (e.g. y · log|x| of a large multiplicative output) gives 0
    there instead of NaN. Values and all other gradients are unchanged.
    """
    t_flat = ops.logical_or(ops.equal(ops.abs(t), 1.0), ops.equal(s, 0.0))
    s_flat = ops.logical_or(
        ops.logical_or(ops.equal(s, 1.0), ops.equal(s, 0.0)), ops.equal(t, 0.0)
    )
    return _no_gradient_where(t_flat, t) * _no_gradient_where(s_flat, s)


def sigmoid_weight(w_hat):
    """The weight σ(Ŵ) of the NAC•,σ, with no 0 · inf in the gradient where
    σ saturates to exactly 0 or 1 (see `_saturating_product`)."""
    s = ops.sigmoid(w_hat)
    return _no_gradient_where(ops.logical_or(ops.equal(s, 1.0), ops.equal(s, 0.0)), s)


def nac_weight(w_hat, m_hat):
    """The NAC weight matrix W = tanh(Ŵ) ⊙ σ(M̂), biased toward {-1, 0, 1}.

    Saturated entries get an exact 0 gradient, never NaN
    (`_saturating_product`).
    """
    return _saturating_product(tanh(w_hat), ops.sigmoid(m_hat))


def log_abs(x, epsilon, log_mode="add"):
    """A logarithm of |x| that stays finite at x = 0.

    The gradient with respect to x is 0 at x = 0 on every backend (`_abs`).

    Args:
        x: input tensor.
        epsilon: a small positive constant.
        log_mode: `"add"` computes log(|x| + ε) (the NALU paper);
            `"clamp"` computes log(max(|x|, ε)) (iNALU), which is exact for
            |x| >= ε.
    """
    magnitude = _abs(x)
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
    return exp(log_space_exponent(x, w, epsilon, log_mode, exp_clip))


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
    return _mix(g, a_safe, exp(z_safe))


def golden_tanh(x):
    """tanh with base φ = (1 + √5) / 2: (φ^{2x} − 1) / (φ^{2x} + 1) = tanh(x ln φ)."""
    return tanh(x * math.log((1.0 + math.sqrt(5.0)) / 2.0))


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
    weights |W| (see `nmu_factors`), clipped. Shapes: `x` `(..., in)`, `w`
    `(in, out)`, result `(..., out)`.
    """
    # The factors lie in [−1, 1], so no partial product can overflow: the
    # plain product (and its gradient) is safe here.
    return ops.clip(ops.prod(nmu_factors(ops.sign(x), ops.abs(w)), axis=-2), -1.0, 1.0)


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
    return _with_gradient(
        _plain(lambda g, a, s, m: g * a + (1.0 - g) * s * m),
        lambda ct, y, g, a, s, m: (
            ct * _finite(a - s * m),
            ct * g,
            ct * _finite((1.0 - g) * m),
            ct * (1.0 - g) * s,
        ),
        g,
        a_safe,
        sign,
        exp(z_safe),
    )


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
    magnitude = _abs(x) + ops.cast(epsilon, x.dtype)
    negative = ops.less(x, 0.0)
    if gate is None:
        k = ops.cast(negative, x.dtype) * math.pi
    else:
        # r = ĝ (|x| + ε) + (1 − ĝ), with ∂r/∂ĝ = |x| + ε − 1 and
        # ∂r/∂|x| = ĝ each applied to the cotangent as one product (the plain
        # backward pass forms ∂r/∂ĝ as a difference of two products, inf − inf
        # where the cotangent of r overflows); where ĝ = 0 (or |x| + ε = 1) r
        # does not depend on x (on ĝ): an exact 0, also for an infinite
        # cotangent.
        magnitude = _with_gradient(
            _plain(lambda gate, magnitude: gate * magnitude + (1.0 - gate)),
            lambda ct, r, gate, magnitude: (
                ops.where(ops.equal(magnitude, 1.0), ops.zeros_like(r), ct * (magnitude - 1.0)),
                ops.where(ops.equal(gate, 0.0), ops.zeros_like(r), ct * gate),
            ),
            gate,
            magnitude,
        )
        # ĝ π where x < 0, else exactly 0 (no gradient to ĝ from x >= 0)
        k = ops.where(negative, gate * math.pi, ops.zeros_like(x))
    log_r = ops.log(magnitude)
    if w_im is None:
        return _multiply(exp(ops.matmul(log_r, w_re)), cos(ops.matmul(k, w_re)))
    return _multiply(
        exp(ops.matmul(log_r, w_re) - ops.matmul(k, w_im)),
        cos(ops.matmul(k, w_re) + ops.matmul(log_r, w_im)),
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


#: `_fold` multiplies (adds) up to this many terms as a chain of elementwise
#: operations; longer axes are folded in chunks of this length, then the
#: chunks' results (XLA on a CPU runs such chains several times faster than a
#: reduction over a short middle axis, in particular under `jax.vmap`).
_CHAIN = 16


def _fold(x, axis, multiply):
    """Π (`multiply`) or Σ of `x` along the negative `axis` (static length).

    Up to `_CHAIN` terms: left to right, as a running product (sum) does.
    Longer: the axis is padded with the neutral element to a multiple of
    `_CHAIN`, each chunk is folded, then the chunks' results.
    """
    n = x.shape[axis]
    tail = (slice(None),) * (-axis - 1)
    if n is None:
        return ops.prod(x, axis=axis) if multiply else ops.sum(x, axis=axis)
    if n <= _CHAIN:
        result = x[(Ellipsis, 0) + tail]
        for i in range(1, n):
            term = x[(Ellipsis, i) + tail]
            result = result * term if multiply else result + term
        return result
    chunks = -(-n // _CHAIN)
    pad_shape = list(x.shape)
    pad_shape[axis] = chunks * _CHAIN - n
    if pad_shape[axis]:
        fill = ops.ones if multiply else ops.zeros
        pad = fill([d if d is not None else 1 for d in pad_shape], dtype=x.dtype)
        pad = pad * ops.ones_like(x[(Ellipsis, slice(0, 1)) + tail])  # batch dims
        x = ops.concatenate([x, pad], axis=axis)
    parts = [
        _fold(x[(Ellipsis, slice(c * _CHAIN, (c + 1) * _CHAIN)) + tail], axis, multiply)
        for c in range(chunks)
    ]
    return _fold(ops.stack(parts, axis=axis), axis, multiply)


def safe_product(factors, axis=-2):
    """Π of `factors` along the negative `axis`, with no NaN from overflowing
    partial products.

    * A product with an exact zero factor is exactly 0, whatever the other
      factors (a plain running product of [1e30, 1e30, 0] in float32 is
      inf · 0 = NaN, and depends on the order of the factors).
    * Otherwise the value is the running product of the factors (left to
      right; for more than 16 factors, in chunks of 16). It is never NaN (no factor is 0 or
      inf), but a partial product can still overflow to ±inf (underflow to
      0) where the whole product is representable: [1e30, 1e30, 1e-30,
      1e-30] gives inf in float32. (Rescaling in log space would fix that at
      the cost of a logarithm per factor, several times the cost of the
      product itself; it is not done.)
    * Gradients: ∂/∂f_k = Π_{i≠k} f_i, formed from the product of the non-zero
      factors: (cotangent · that product) / f_k where no factor is zero; with
      one zero factor, cotangent · the product of the others for that factor
      and 0 for the rest; with two or more, 0. Every step is clipped to the
      finite range, so a gradient is never NaN (a 0 cotangent gives 0, also
      where the product overflowed), and where it overflows it is the
      largest finite value of the right sign, which the chain W x + 1 − W → W
      cannot turn into inf − inf. (Only first derivatives are defined.)
    """
    largest, _ = _finfo(factors.dtype)

    def forward(factors):
        zero = ops.equal(factors, 0.0)
        nonzero = ops.where(zero, ops.ones_like(factors), factors)
        zeros = _fold(ops.cast(zero, factors.dtype), axis, multiply=False)
        product = _fold(nonzero, axis, multiply=True)  # of the non-zero factors
        value = ops.where(ops.greater(zeros, 0.0), ops.zeros_like(product), product)
        return value, (zero, nonzero, zeros, product)

    def backward(ct, saved, factors):
        zero, nonzero, zeros, product = saved
        # Per output: cotangent · (product of the non-zero factors), 0 with
        # two or more zero factors; clipped, so a 0 cotangent gives 0.
        scale = ops.where(ops.greater(zeros, 1.0), ops.zeros_like(product), product)
        scale = ops.clip(ct * ops.clip(scale, -largest, largest), -largest, largest)
        # Per factor: divided by the factor itself (by 1 for a zero factor);
        # with a zero factor only that factor gets it.
        grad = ops.clip(ops.expand_dims(scale, axis) / nonzero, -largest, largest)
        kept = ops.logical_or(zero, ops.equal(ops.expand_dims(zeros, axis), 0.0))
        return (ops.where(kept, grad, ops.zeros_like(grad)),)

    return _with_gradient(forward, backward, factors)


def nmu_product(x, w):
    """The NMU: y_j = Π_i (W_ij · x_i + 1 − W_ij). `x` `(..., in)`, `w` `(in, out)`.

    The product is `safe_product`: a zero factor gives exactly 0, overflowing
    partial products give no NaN, in the output or the gradients.
    """
    return safe_product(nmu_factors(x, w), axis=-2)


def gate_mix_product(g, a, factors):
    """g ⊙ a + (1 − g) ⊙ Π_i factors_i, with no 0·inf (e.g. a gated NAU/NMU).

    The product counterpart of `gate_mix`. It takes the *factors* of the
    multiplicative path, shape `(..., in, out)` (see `nmu_factors`); the
    product is `safe_product` (a zero factor gives 0, no NaN from
    overflowing partial products). Where g == 1 the product is replaced by 1
    before it meets the zero weight 1 − g, so an overflowing product does
    not give 0 · inf; its gradient there is exactly 0 (`safe_product` turns a
    zero cotangent into a zero gradient, also where the product overflowed).
    Where g == 1 the result is exactly `a`; where g == 0 it is exactly the
    product, even if `a` is inf.
    """
    one_minus_g = 1.0 - g
    add_used = ops.not_equal(g, 0.0)
    mul_used = ops.not_equal(one_minus_g * ops.ones_like(a), 0.0)
    a_safe = ops.where(add_used, a, ops.zeros_like(a))
    product = safe_product(factors, axis=-2)
    product_safe = ops.where(mul_used, product, ops.ones_like(product))
    return _mix(g, a_safe, product_safe)


def golden_nac_weight(w_hat, m_hat):
    """The G-NALU weight tanh_φ(Ŵ) ⊙ σ_φ(M̂), with the golden-ratio base φ.

    Saturated entries get an exact 0 gradient, never NaN
    (`_saturating_product`).
    """
    return _saturating_product(golden_tanh(w_hat), golden_sigmoid(m_hat))


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
