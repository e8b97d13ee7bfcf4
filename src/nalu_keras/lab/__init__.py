"""The lab: tasks, data, trainers, protocol statistics, experiments, reports
and the `nalu-keras` command.

The layer library (`nalu_keras`) needs only keras, numpy and a backend; the
lab needs more (scipy, matplotlib, tqdm, scikit-learn), installed with the
extra: `pip install "nalu-keras[lab]"`.
"""

import importlib.util

# module name -> distribution name
LAB_REQUIREMENTS = {"scipy": "scipy", "matplotlib": "matplotlib", "tqdm": "tqdm", "sklearn": "scikit-learn"}


def missing_requirements():
    """The distributions the lab needs that are not installed."""
    return [dist for module, dist in LAB_REQUIREMENTS.items() if importlib.util.find_spec(module) is None]


def require_lab():
    """Raise ImportError naming what to install if the lab's requirements
    are missing (the command-line tool calls this first)."""
    missing = missing_requirements()
    if missing:
        raise ImportError(
            f"the nalu-keras lab needs {', '.join(missing)}: install it with "
            '`pip install "nalu-keras[lab]"` (the layers alone need only keras, numpy and a backend)'
        )
