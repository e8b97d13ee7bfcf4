"""The layer library needs only keras, numpy and a backend; the lab is an extra.

Each check runs in a fresh interpreter in which the lab's own requirements
(matplotlib, tqdm, scikit-learn) cannot be imported, as on a machine where
only `pip install nalu-keras` was run. (scipy is not blocked: JAX itself
requires it; the library's sources are checked not to import it.)
"""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

import nalu_keras

LIBRARY = pathlib.Path(nalu_keras.__file__).parent
BLOCKED = ("matplotlib", "tqdm", "sklearn")
PRELUDE = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in BLOCKED)


def run(code, cwd):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", PRELUDE + code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_layers_work_without_the_lab(tmp_path):
    result = run(
        "import numpy as np, keras, nalu_keras as nk\n"
        "for name in nk.available_units():\n"
        "    nk.get_unit(name)\n"
        "model = keras.Sequential([keras.Input((4,)), nk.NAU(2), nk.NMU(1)])\n"
        "y = model(np.ones((2, 4), 'float32'))\n"
        "model.save('m.keras')\n"
        "again = keras.saving.load_model('m.keras')\n"
        "assert np.allclose(again(np.ones((2, 4), 'float32')), y)\n"
        "print(nk.sparsity_error(again))\n"
        "print(sorted(m for m in sys.modules if m.startswith('nalu_keras.lab')))\n",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"  # no lab module was imported


def test_the_command_names_the_missing_extra(tmp_path):
    result = run("from nalu_keras.lab.cli import main\nsys.exit(main(['bench', '--help']))\n", tmp_path)
    assert result.returncode == 2
    assert 'pip install "nalu-keras[lab]"' in result.stderr
    assert "matplotlib, tqdm, scikit-learn" in result.stderr


def _imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("path", sorted(p for p in LIBRARY.rglob("*.py") if "lab" not in p.relative_to(LIBRARY).parts),
                         ids=lambda p: str(p.relative_to(LIBRARY)))
def test_library_sources_import_only_the_library_requirements(path):
    allowed_roots = {"keras", "numpy", "jax", "tensorflow", "torch", "nalu_keras", "__future__"}
    roots = {name.split(".")[0] for name in _imports(path)}
    foreign = {r for r in roots - allowed_roots if r not in sys.stdlib_module_names}
    assert not foreign, f"{path.name} imports {sorted(foreign)}"
    assert not any(name.startswith("nalu_keras.lab") for name in _imports(path)), f"{path.name} imports the lab"
