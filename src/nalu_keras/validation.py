"""Argument checks shared by layers, regularizers, constraints and callbacks.

Each returns the normalized value or raises a ValueError that names the
argument and shows the bad value.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def check_units(units):
    """Return `units` if it is a positive int, else raise a ValueError naming it."""
    if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
        raise ValueError(
            f"Received an invalid value for argument `units`, expected a "
            f"positive integer, got {units!r}."
        )
    return int(units)


def check_bool(name, value):
    """Return `value` as bool if it is True or False, else raise."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected True "
            f"or False, got {value!r}."
        )
    return bool(value)


def check_number(name, value, minimum=None, strict=False, integer=False):
    """Return `value` as float (int with `integer`) if it is a finite real
    number (an integer with `integer`; never a bool) and, with `minimum`,
    >= `minimum` (> `minimum` when `strict`); else raise a ValueError naming
    the argument: "Received an invalid value for argument `name`, expected a
    finite number[ >= minimum], got value."
    """
    kind = numbers.Integral if integer else numbers.Real
    valid = (
        not isinstance(value, bool)
        and isinstance(value, kind)
        and math.isfinite(value)
    )
    if valid and minimum is not None:
        valid = value > minimum if strict else value >= minimum
    if not valid:
        what = "an integer" if integer else "a finite number"
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum}"
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected "
            f"{what}{bound}, got {value!r}."
        )
    return int(value) if integer else float(value)


def check_finite(name, value):
    """Return `value` as float if it is a finite number, else raise."""
    return check_number(name, value)


def check_non_negative(name, value):
    """Return `value` as float if it is a finite number >= 0, else raise."""
    return check_number(name, value, minimum=0)


def check_positive(name, value):
    """Return `value` as float if it is a finite number > 0, else raise."""
    return check_number(name, value, minimum=0, strict=True)


def check_optional_positive(name, value):
    """None for None, else `check_positive(name, value)`."""
    return None if value is None else check_positive(name, value)


def check_choice(name, value, choices):
    """Return `value` if it is one of `choices`, else raise listing them."""
    if value not in choices:
        raise ValueError(
            f"Received an invalid value for argument `{name}`: {value!r}. "
            f"Expected one of {', '.join(repr(c) for c in choices)}."
        )
    return value


# The step counters of the compiled training programs (Keras' iteration
# counter on JAX, `lax.scan` indices) are 32-bit integers.
MAX_STEPS = 2**31 - 1


def check_steps(name, value, minimum=1):
    """Return `value` if it is an integer in [minimum, MAX_STEPS], else raise.

    Larger step counts cannot be run: the step counter of the compiled
    training programs is a 32-bit integer.
    """
    valid = (not isinstance(value, bool) and isinstance(value, numbers.Integral)
             and minimum <= value <= MAX_STEPS)
    if not valid:
        raise ValueError(
            f"{name} must be an integer from {minimum} to {MAX_STEPS:,} (the step counter of "
            f"the compiled training program is a 32-bit integer), got {value!r}"
        )
    return int(value)


def check_learning_rate(name, value):
    """Return `value` as float if it is a finite number > 0, else raise
    "<name> must be a finite number > 0, got ..."."""
    valid = (not isinstance(value, bool) and isinstance(value, numbers.Real)
             and math.isfinite(value) and value > 0)
    if not valid:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


# The most logged values (logged steps × seeds) one training run keeps: its
# curves are held in memory as rows and written to CSV.
MAX_LOG_VALUES = 10_000_000


def check_log_points(steps, log_every, seeds=1):
    """Raise a ValueError if logging every `log_every` of `steps` steps for
    `seeds` seeds would keep more than MAX_LOG_VALUES values; computed
    before anything per logged step is allocated."""
    points = steps // log_every + 2
    if points * seeds > MAX_LOG_VALUES:
        raise ValueError(
            f"{steps:,} steps logged every {log_every:,} steps for {seeds:,} seed(s) would keep "
            f"{points * seeds:,} logged values, more than the {MAX_LOG_VALUES:,} a run holds in "
            f"memory; log less often (log_every >= {-(-steps * seeds // MAX_LOG_VALUES):,})"
        )
