"""MNIST counting / addition / parity: models, evaluation, configuration, CLI.

Everything here runs on scikit-learn's bundled 8x8 digits (always available)
with tiny budgets and a narrow encoder; none of it needs the real MNIST.
"""

import csv
import os

import keras
import numpy as np
import pytest

from nalu_keras.lab.cli import main
from nalu_keras.lab.data import DigitSequences, load_digit_images, make_sequences
from nalu_keras.lab.experiments import mnist_sequences as ms
from nalu_keras.lab.experiments.mnist_sequences import MnistSequenceConfig

TINY = dict(steps=3, batch_size=4, test_sequences=6, lengths=(1, 12), encoder_filters=(4, 6),
            encoder_dense=16, lstm_units=4, head_units=4, digits_source="sklearn")


@pytest.fixture(scope="module")
def digits():
    return load_digit_images("sklearn")


def run_cli(argv):
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


# -- end to end, every task ----------------------------------------------------------
@pytest.mark.parametrize("task, models", [
    ("counting", ("NAC",)),
    ("addition", ("NAU",)),
    ("parity", ("LSTM",)),
])
def test_each_task_end_to_end(task, models, digits, tmp_path):
    config = MnistSequenceConfig(tasks=(task,), models=models, **TINY)
    seen = []
    rows = ms.run(config, progress=lambda *args: seen.append(args), images=digits)
    assert len(rows) == len(models) * 2  # one row per test length
    assert [(r["model"], r["length"]) for r in rows] == [(m, n) for m in models for n in (1, 12)]
    for row in rows:
        assert row["task"] == task and row["seed"] == 0 and row["sequences"] == 6
        assert row["dataset"] == "sklearn-digits-8x8"
        assert row["data_source"] == "scikit-learn bundled digits (load_digits)"
        assert row["image_size"] == "8x8" and row["padding"] == "same"
        assert 0.0 <= row["accuracy"] <= 1.0 and np.isfinite(row["mae"]) and row["mae"] >= 0
        assert row["steps"] == 3 and np.isfinite(row["final_loss"])
        assert ("count_accuracy" in row) == (task == "counting")
        assert ("bias" in row) == (task != "parity")
        assert (row["state_radius"] == "") == (row["model"] == "LSTM")
    # Progress counts every training step of every model.
    assert sum(args[3] for args in seen) == 3 * len(models)
    assert {args[:3] for args in seen} == {(task, m, 0) for m in models}

    text, paths = ms.write_report(rows, config, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["mnist_runs.csv", "mnist_table.md", "mnist.png"]
    with open(paths[0]) as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    table = open(paths[1]).read()
    assert "sklearn-digits-8x8 8x8 from scikit-learn bundled digits" in table
    assert f"| {task} | {models[0]} |" in table
    assert ("individual counts" in table) == (task == "counting")
    assert ("state radius" in table) == (models[0] != "LSTM")
    assert "acc L=12" in text and "MAE L=1" in text


def test_runs_are_deterministic(digits):
    config = MnistSequenceConfig(tasks=("addition",), models=("NAC",), **{**TINY, "lengths": (3,)})
    first = ms.run(config, images=digits)
    second = ms.run(config, images=digits)
    assert [r["mae"] for r in first] == [r["mae"] for r in second]
    assert [r["final_loss"] for r in first] == [r["final_loss"] for r in second]


# -- the model ------------------------------------------------------------------------
@pytest.mark.parametrize("task, model_name", [
    ("counting", "NAC"), ("counting", "LSTM"), ("addition", "NALU"), ("parity", "NAU"),
])
def test_evaluation_on_encoded_images_equals_the_full_model(task, model_name, digits):
    config = MnistSequenceConfig(tasks=(task,), models=(model_name,),
                                 **{**TINY, "lstm_units": 8, "head_units": 16})
    keras.utils.set_random_seed(5)
    full, encoder, core = ms.build_models(config, task, model_name, digits.image_shape)
    sequences = make_sequences(digits, "test", 5, 4, seed=0)
    direct = full.predict(sequences.images(digits), verbose=0)
    reused = ms.evaluate_core(core, ms.encode(encoder, digits.x_test), sequences.indices)
    assert direct.shape == reused.shape == (5, ms.FEATURES[task])
    assert np.std(direct) > 0  # the comparison is not between constants
    np.testing.assert_allclose(reused, direct, rtol=1e-4, atol=1e-4)


def test_evaluation_in_chunks_equals_one_pass(digits, monkeypatch):
    config = MnistSequenceConfig(**TINY)
    keras.utils.set_random_seed(6)
    _, encoder, core = ms.build_models(config, "addition", "LSTM", digits.image_shape)
    features = ms.encode(encoder, digits.x_test)
    sequences = make_sequences(digits, "test", 7, 9, seed=1)
    whole = ms.evaluate_core(core, features, sequences.indices)
    monkeypatch.setattr(ms, "EVAL_CHUNK", 20)  # 2 sequences of 9 per chunk
    np.testing.assert_allclose(ms.evaluate_core(core, features, sequences.indices), whole,
                               rtol=1e-5, atol=1e-5)


def test_encoder_follows_the_paper_on_28x28_images():
    config = MnistSequenceConfig()
    encoder = ms.build_encoder(config, (28, 28, 1), 10)
    shapes = [tuple(layer.output.shape[1:]) for layer in encoder.layers]
    assert shapes == [(24, 24, 20), (12, 12, 20), (8, 8, 50), (4, 4, 50), (800,), (500,), (10,)]
    small = ms.build_encoder(config, (8, 8, 1), 1)
    assert [tuple(layer.output.shape[1:]) for layer in small.layers][:4] == [
        (8, 8, 20), (4, 4, 20), (4, 4, 50), (2, 2, 50)]


def test_padding_choice():
    config = MnistSequenceConfig()
    assert config.resolve_padding((28, 28, 1)) == "valid"
    assert config.resolve_padding((8, 8, 1)) == "same"
    assert MnistSequenceConfig(padding="same").resolve_padding((28, 28, 1)) == "same"
    with pytest.raises(ValueError, match="8x8 images vanish"):
        MnistSequenceConfig(padding="valid").resolve_padding((8, 8, 1))


def nac_weights_for_identity_accumulation(cell, features):
    """Set a NAC cell to h_t = x_t + h_{t-1} exactly (W = [I; I], saturated)."""
    eye = np.concatenate([np.eye(features), np.eye(features)]).astype("float32")
    cell.unit.w_hat.assign(np.full_like(eye, 30.0))  # tanh -> 1
    cell.unit.m_hat.assign(np.where(eye > 0, 30.0, -30.0).astype("float32"))  # sigmoid -> 1 or 0


def test_exact_nac_core_counts_and_adds_at_any_length(digits):
    """With ideal weights the NAC core's answer is exact at length 1,000, unlike its training length."""
    config = MnistSequenceConfig()
    for task, features in (("counting", 10), ("addition", 1)):
        core = ms.build_core(config, task, "NAC", features)
        cell = core.layers[1].cell
        cell.build((None, features))
        nac_weights_for_identity_accumulation(cell, features)
        sequences = make_sequences(digits, "test", 20, 1000, seed=2)
        encodings = (np.eye(10, dtype="float32") if task == "counting"
                     else np.arange(10, dtype="float32")[:, None])[digits.y_test]
        outputs = ms.evaluate_core(core, encodings, sequences.indices)
        result = ms.score(task, outputs, sequences)
        assert result["accuracy"] == 1.0 and result["mae"] < 1e-3


@pytest.mark.parametrize("model_name", ["NAC", "NALU", "NAU"])
def test_identity_state_init_starts_cores_as_accumulators(model_name):
    features = 3
    core = ms.build_core(MnistSequenceConfig(), "counting", model_name, features)
    unit = core.layers[1].cell.unit
    W = keras.ops.convert_to_numpy(unit.W)
    np.testing.assert_allclose(W[features:], np.eye(features), atol=1e-4)
    assert np.abs(W[:features]).max() < 1  # input block: the unit's own random start
    assert np.std(W[:features]) > 0
    np.testing.assert_array_equal(ms.state_block(core), W[features:])
    diagnostics = ms.state_diagnostics(core)
    assert diagnostics["state_radius"] == pytest.approx(1.0, abs=1e-4)
    assert diagnostics["state_max_dev"] < 1e-4
    default = ms.build_core(MnistSequenceConfig(state_init="default"), "counting", model_name,
                            features)
    W_default = keras.ops.convert_to_numpy(default.layers[1].cell.unit.W)
    assert np.abs(np.diag(W_default[features:])).max() < 0.9
    assert ms.state_diagnostics(default)["state_max_dev"] > 0.1


def test_state_diagnostics_of_a_known_block_and_of_the_lstm():
    core = ms.build_core(MnistSequenceConfig(), "counting", "NAU", 2)
    unit = core.layers[1].cell.unit
    unit.w.assign(np.array([[0.5, 0.0], [0.0, 0.5], [1.0, 0.5], [0.0, 1.0]], dtype="float32"))
    diagnostics = ms.state_diagnostics(core)  # block [[1, .5], [0, 1]]: eigenvalues 1, 1
    assert diagnostics == pytest.approx({"state_radius": 1.0, "state_max_dev": 0.5})
    unit.w.assign(np.array([[0, 0], [0, 0], [1.0, 0.0], [0.0, -0.25]], dtype="float32"))
    assert ms.state_diagnostics(core)["state_radius"] == pytest.approx(1.0)
    unit.w.assign(np.array([[0, 0], [0, 0], [0.5, 0.0], [0.0, -0.25]], dtype="float32"))
    assert ms.state_diagnostics(core)["state_radius"] == pytest.approx(0.5)
    lstm = ms.build_core(MnistSequenceConfig(), "counting", "LSTM", 10)
    assert ms.state_block(lstm) is None
    assert ms.state_diagnostics(lstm) == {"state_radius": "", "state_max_dev": ""}


def test_lstm_output_bias_starts_at_the_target_mean():
    core = ms.build_core(MnistSequenceConfig(), "counting", "LSTM", 10,
                         target_mean=np.arange(10, dtype="float32"))
    bias = keras.ops.convert_to_numpy(core.get_layer("lstm_head").bias)
    np.testing.assert_array_equal(bias, np.arange(10))


# -- metrics ------------------------------------------------------------------------------
def test_scores():
    digits = np.array([[1, 2, 3], [4, 4, 0]])
    sequences = DigitSequences(np.zeros_like(digits), digits, "test")
    # addition: targets 6 and 8
    result = ms.score("addition", np.array([[6.4], [7.4]]), sequences)
    assert result == pytest.approx({"accuracy": 0.5, "mae": 0.5, "bias": -0.1})
    # counting: first sequence all right, second with one count off by 1.
    counts = sequences.counts().astype(float)
    outputs = counts.copy()
    outputs[1, 4] = 1.0
    outputs[0, 0] += 0.3
    result = ms.score("counting", outputs, sequences)
    assert result["accuracy"] == 0.5
    assert result["count_accuracy"] == pytest.approx(19 / 20)
    assert result["mae"] == pytest.approx((0.3 + 1.0) / 20)
    assert result["bias"] == pytest.approx((0.3 - 1.0) / 20)
    # parity: targets 0 (sum 6) and 0 (sum 8); logits -2 (even, right) and +1 (odd, wrong)
    result = ms.score("parity", np.array([[-2.0], [1.0]]), sequences)
    assert result["accuracy"] == 0.5
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    assert result["mae"] == pytest.approx((sigmoid(-2.0) + sigmoid(1.0)) / 2)
    # Overflowed predictions are wrong and make the MAE infinite, not NaN.
    result = ms.score("addition", np.array([[np.nan], [8.0]]), sequences)
    assert result["accuracy"] == 0.5 and result["mae"] == np.inf
    assert ms.score("counting", np.full((2, 10), np.inf), sequences)["mae"] == np.inf


def test_test_sequences_are_shared_and_from_the_test_split(digits):
    config = MnistSequenceConfig(test_sequences=30, digits_source="sklearn")
    a = ms.evaluation_sequences(config, digits, 100)
    b = ms.evaluation_sequences(config, digits, 100)
    assert a.split == "test" and a.indices.shape == (30, 100)
    np.testing.assert_array_equal(a.indices, b.indices)
    train = ms.training_sequences(MnistSequenceConfig(steps=5, batch_size=3), digits, "counting", 0)
    assert train.split == "train" and train.indices.shape == (15, 10)


# -- configuration ----------------------------------------------------------------------
@pytest.mark.parametrize("fields, message", [
    (dict(tasks=("counting", "product")), "unknown task 'product'"),
    (dict(models=("GRU",)), "unknown model 'GRU'; expected one of LSTM, NAC, NALU, NAU"),
    (dict(models=()), "models must not be empty"),
    (dict(tasks=("parity", "parity")), "tasks lists an item twice"),
    (dict(lengths=(10, 0)), "test lengths must be positive integers"),
    (dict(lengths=()), "lengths must not be empty"),
    (dict(steps=0), "steps must be a positive integer, got 0"),
    (dict(seeds=1.5), "seeds must be a positive integer"),
    (dict(batch_size=True), "batch_size must be a positive integer"),
    (dict(learning_rate=0.0), "learning_rate must be a finite number > 0"),
    (dict(learning_rate=float("inf")), "learning_rate must be a finite number > 0"),
    (dict(encoder_filters=(20,)), "encoder_filters must be two positive integers"),
    (dict(padding="full"), "padding must be one of auto, valid, same"),
    (dict(state_init="zeros"), "state_init must be one of identity, default"),
    (dict(digits_source="emnist"), "digits_source must be one of auto, mnist, sklearn"),
    (dict(digits_source="sklearn", mnist_path="x.npz"), "mnist_path applies to MNIST only"),
    (dict(data_seed=-1), "data_seed must be a non-negative integer"),
])
def test_config_validation(fields, message):
    with pytest.raises(ValueError, match=message):
        MnistSequenceConfig(**fields)


def test_config_defaults_follow_the_paper():
    config = MnistSequenceConfig()
    assert config.tasks == ("counting", "addition", "parity")
    assert config.models == ("LSTM", "NAC", "NALU", "NAU")
    assert config.train_length == 10 and config.lengths == (10, 100, 1000)
    assert config.encoder_filters == (20, 50) and config.encoder_dense == 500
    assert MnistSequenceConfig(tasks=["addition"]).tasks == ("addition",)  # lists become tuples


# -- command line ---------------------------------------------------------------------------
def test_cli_missing_mnist_file_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "no-such.npz"
    code = run_cli(["mnist", "--mnist-path", str(missing), "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("nalu-keras: error:") and "no-such.npz" in err and "not found" in err


@pytest.mark.parametrize("argv, message", [
    (["--tasks", "counting,product"], "unknown task 'product'"),
    (["--models", "LSTM,GRU"], "unknown model 'GRU'"),
    (["--lengths", "10,abc"], "--lengths"),
    (["--digits-source", "emnist"], "digits_source must be one of"),
    (["--digits-source", "sklearn", "--mnist-path", "x.npz"], "MNIST only"),
    (["--state-init", "zeros"], "state_init must be one of identity, default"),
])
def test_cli_invalid_arguments_are_one_line_errors(argv, message, tmp_path, capsys):
    assert run_cli(["mnist", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_cli_quick_writes_csv_markdown_and_plot(tmp_path, capsys):
    out = tmp_path / "mnist"
    code = run_cli(["mnist", "--quick", "--digits-source", "sklearn", "--tasks", "addition",
                    "--models", "NAC", "--steps", "2", "--lengths", "1,20", "--state-init", "default",
                    "--test-sequences", "5", "--out", str(out)])
    assert code == 0
    with open(out / "mnist_runs.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2  # one per test length
    assert {r["dataset"] for r in rows} == {"sklearn-digits-8x8"}
    assert {r["steps"] for r in rows} == {"2"} and {r["length"] for r in rows} == {"1", "20"}
    assert {r["state_init"] for r in rows} == {"default"}
    assert "| addition | NAC |" in (out / "mnist_table.md").read_text()
    assert (out / "mnist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "data: sklearn-digits-8x8 (8x8, 1,347 train / 450 test images)" in printed
    assert "MNIST sequences" in printed
