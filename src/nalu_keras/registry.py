"""The units by the names the papers use: `get_unit("NAC*")` -> `MulNAC`.

Names are matched case-insensitively ("nalu", "Inalu"); surrounding spaces
are ignored. The classes are imported on first use, so the registry can list
units whose modules are optional or not yet imported.
"""

from __future__ import annotations

import importlib

_LAYERS = "nalu_keras.layers"

# name -> (module, class name), in the order the units appeared in the papers.
_UNITS = {
    "NAC+": ("nac", "NAC"),
    "NAC": ("nac", "NAC"),
    "NAC*": ("nac", "MulNAC"),
    "NAC•": ("nac", "MulNAC"),
    "MulNAC": ("nac", "MulNAC"),
    "NALU": ("nalu", "NALU"),
    "NAU": ("nau_nmu", "NAU"),
    "NMU": ("nau_nmu", "NMU"),
    "GatedNAUNMU": ("nau_nmu", "GatedNAUNMU"),
    "NAC•,σ": ("golden", "SigmoidMulNAC"),
    "NAC*,σ": ("golden", "SigmoidMulNAC"),
    "SigmoidMulNAC": ("golden", "SigmoidMulNAC"),
    "NAC•,NMU": ("bounded_mul", "BoundedMulNAC"),
    "NAC*,NMU": ("bounded_mul", "BoundedMulNAC"),
    "BoundedMulNAC": ("bounded_mul", "BoundedMulNAC"),
    "iNALU": ("inalu", "iNALU"),
    "NPU": ("npu", "NPU"),
    "RealNPU": ("npu", "RealNPU"),
    "NaiveNPU": ("npu", "NaiveNPU"),
    "RealNaiveNPU": ("npu", "RealNaiveNPU"),
    "G-NALU": ("golden", "GNALU"),
    "GNALU": ("golden", "GNALU"),
}


def _key(name):
    return "".join(name.split()).casefold()


_BY_KEY = {}
for _name in _UNITS:
    # Every name must stay unambiguous once case and spaces are ignored.
    assert _key(_name) not in _BY_KEY, _name
    _BY_KEY[_key(_name)] = _name


def available_units():
    """All the names `get_unit` accepts (paper names and aliases), in order."""
    return list(_UNITS)


def get_unit(name):
    """The unit class for a name from the papers, or for one of its aliases.

    Accepted names (case-insensitive): "NAC+"/"NAC" → `NAC`;
    "NAC*"/"NAC•"/"MulNAC" → `MulNAC`; "NALU"; "NAU"; "NMU"; "GatedNAUNMU";
    "NAC•,σ"/"NAC*,σ"/"SigmoidMulNAC"; "NAC•,NMU"/"NAC*,NMU"/"BoundedMulNAC"; "iNALU"; "NPU"; "RealNPU";
    "NaiveNPU"; "RealNaiveNPU"; "G-NALU"/"GNALU".

    Args:
        name: a string, or a unit class (returned as is).

    Returns:
        The layer class, to be called with its own arguments, e.g.
        `get_unit("NPU")(units=1)`.

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.
    """
    if isinstance(name, type):
        from nalu_keras.layers.base import ArithmeticUnit

        if issubclass(name, ArithmeticUnit):
            return name
    canonical = _BY_KEY.get(_key(name)) if isinstance(name, str) else None
    if canonical is None:
        raise ValueError(
            f"Unknown arithmetic unit {name!r}. Valid names (case-insensitive): "
            f"{', '.join(available_units())}."
        )
    module, class_name = _UNITS[canonical]
    return getattr(importlib.import_module(f"{_LAYERS}.{module}"), class_name)
