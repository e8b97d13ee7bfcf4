"""The sequential MNIST product: error measure, success rule, the exact
reference, and a tiny end-to-end run on scikit-learn's 8x8 digits."""

import os

import numpy as np
import pytest

from nalu_keras.lab.data import load_digit_images
from nalu_keras.lab.experiments import sequential_product as sp


def tiny(**overrides):
    fields = dict(models=("NMU",), seeds=1, steps=6, batch_size=8, test_sequences=20,
                  test_length=4, digits_source="sklearn", lstm_units=4,
                  encoder_filters=(2, 3), encoder_dense=8)
    fields.update(overrides)
    return sp.SequentialProductConfig(**fields)


@pytest.fixture(scope="module")
def digits():
    return load_digit_images("sklearn")


def test_length_errors_hand_computed():
    targets = np.array([[2.0, 6.0], [5.0, 45.0]])
    outputs = np.array([[20.0, 6.0], [5.0, 4.5]])
    errors = sp.length_errors(outputs, targets)
    np.testing.assert_allclose(errors["error"], [0.5, 0.5])          # |log10 10| / 2, |log10 0.1| / 2
    np.testing.assert_allclose(errors["relative_error"], [4.5, 0.45])  # (18/2)/2, (40.5/45)/2
    np.testing.assert_allclose(errors["mse"], [162.0, 820.125])
    # 9^20 ≈ 1.2e19 in float64: an exact prediction has no error at all
    big = np.array([[9.0 ** 20]])
    assert sp.length_errors(big, big)["error"][0] == 0.0
    # a non-positive or non-finite prediction has an infinite log error
    bad = sp.length_errors(np.array([[-3.0], [np.inf]]), np.array([[3.0], [3.0]]))
    assert bad["error"][0] == np.inf and bad["mse"][0] == np.inf


def _rows(errors):
    """Rows for add_success: {model: [error at L=1 per seed]}."""
    return [{"model": model, "seed": seed, "length": 1, "error": e}
            for model, values in errors.items() for seed, e in enumerate(values)]


def test_success_against_the_reference_for_each_criterion():
    rows = _rows({"reference": [0.1, 0.3, 0.2], "NMU": [0.25, 0.35, 0.15]})
    by = lambda scored: [r["success"] for r in scored if r["model"] == "NMU"]  # noqa: E731
    assert by(sp.add_success(rows, "max")) == [True, False, True]      # bar 0.3
    assert by(sp.add_success(rows, "median")) == [False, False, True]  # bar 0.2
    assert by(sp.add_success(rows, "paired")) == [False, False, True]  # 0.1, 0.3, 0.2
    # an infinite reference seed sets no bar; an infinite model error never succeeds
    rows = _rows({"reference": [0.1, np.inf], "NMU": [0.05, np.inf]})
    scored = sp.add_success(rows, "max")
    assert scored[-2]["threshold"] == 0.1 and by(scored) == [True, False]
    with pytest.raises(ValueError, match="no reference"):
        sp.add_success(_rows({"NMU": [0.1]}))
    with pytest.raises(ValueError, match="criterion"):
        sp.add_success(rows, "best")


def test_reference_core_is_the_exact_product_and_not_trainable():
    core = sp.build_core(tiny(), sp.REFERENCE)
    assert core.trainable_weights == []
    values = np.random.default_rng(0).uniform(1, 9, size=(16, 20, 1)).astype("float32")
    out = np.asarray(core.predict(values, verbose=0), np.float64)[..., 0]
    np.testing.assert_allclose(out, np.cumprod(values[..., 0].astype(np.float64), axis=1),
                               rtol=1e-5)
    assert sp.unit_weights(core) == {"W_x": 1.0, "W_h": 1.0}
    assert sp.unit_weights(sp.build_core(tiny(), "LSTM")) == {"W_x": "", "W_h": ""}


def test_reference_arithmetic_stays_fixed_while_its_cnn_learns(digits):
    import keras

    config = tiny(steps=5)
    keras.utils.set_random_seed(config.data_seed * 1_000_003 + 0)
    _, untrained, _ = sp.build_models(config, sp.REFERENCE, digits.image_shape)
    model, encoder, core, info = sp.train_model(config, digits, sp.REFERENCE, 0)
    unit = sp.arithmetic_unit(core)
    np.testing.assert_array_equal(unit.get_weights()[0], np.ones((2, 1)))
    changed = [not np.array_equal(a, b)
               for a, b in zip(untrained.get_weights(), encoder.get_weights())]
    assert any(changed)  # the CNN trained
    assert np.isfinite(info["final_loss"])


def test_run_end_to_end_and_report(digits, tmp_path):
    assert tiny(models=("nac*", "nalu", "lstm")).models == ("NAC•", "NALU", "LSTM")
    config = tiny(criterion="paired")
    assert config.all_models == ("NMU", sp.REFERENCE)
    seen = []
    rows = sp.run(config, images=digits, progress=lambda m, s, n: seen.append((m, n)))
    assert sum(n for _, n in seen) == 2 * config.steps
    assert len(rows) == 2 * config.test_length
    for row in rows:
        assert row["dataset"] == "sklearn-digits-8x8" and row["image_size"] == "8x8"
        assert row["padding"] == "same" and row["criterion"] == "paired"
        ref = next(r for r in rows if r["model"] == sp.REFERENCE
                   and r["length"] == row["length"])
        assert row["threshold"] == ref["error"]
        assert row["success"] == bool(np.isfinite(row["error"]) and row["error"] <= ref["error"])
    assert all(r["success"] for r in rows if r["model"] == sp.REFERENCE and np.isfinite(r["error"]))
    assert all(r["W_x"] == 1.0 for r in rows if r["model"] == sp.REFERENCE)
    tests = sp.test_sequences(config, digits)
    assert tests.digits.min() >= 1 and tests.indices.shape == (20, 4)
    text, paths = sp.write_report(rows, config, str(tmp_path))
    assert "NMU" in text and "L=4" in text
    assert sorted(os.path.basename(p) for p in paths) == [
        "product.png", "product_runs.csv", "product_table.md"]
    assert "sklearn-digits-8x8" in open(os.path.join(tmp_path, "product_table.md")).read()


@pytest.mark.parametrize("fields, message", [
    (dict(models=("GRU",)), "unknown model"),
    (dict(models=()), "must not be empty"),
    (dict(models=("NAC*", "NAC•")), "twice"),
    (dict(seeds=0), "seeds"),
    (dict(steps=1.5), "steps"),
    (dict(learning_rate=-1), "learning_rate"),
    (dict(loss_steps="first"), "loss_steps"),
    (dict(criterion="mean"), "criterion"),
    (dict(padding="full"), "padding"),
    (dict(digits_source="web"), "digits_source"),
    (dict(digits_source="sklearn", mnist_path="x.npz"), "mnist_path"),
    (dict(encoder_filters=(20,)), "encoder_filters"),
    (dict(data_seed=-1), "data_seed"),
])
def test_config_validation(fields, message):
    with pytest.raises(ValueError, match=message):
        sp.SequentialProductConfig(**fields)


def test_cli_reports_a_missing_mnist_file_in_one_line(tmp_path, capsys):
    from nalu_keras.lab.cli import main

    missing = str(tmp_path / "none.npz")
    assert main(["product", "--mnist-path", missing, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nalu-keras: error:") and "none.npz" in err[0]
