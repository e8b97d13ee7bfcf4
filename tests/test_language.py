"""Table 3 (language to number): data encoding, masking, model selection, report."""

import os

import numpy as np
import pytest

from nalu_keras.lab.data import number_words as nw
from nalu_keras.lab.experiments import language as lang


def tiny(**overrides):
    fields = dict(seeds=1, steps=40, eval_every=20, embedding=8, hidden=4, beyond_size=12,
                  example_numbers=(7, 723, 1205))
    fields.update(overrides)
    return lang.LanguageConfig(**fields)


def test_encoding_weights_select_what_is_trained():
    config = tiny()
    ids, targets, weights = lang.encode(config, [5, 723])
    assert ids.shape == (2, config.length) and config.length == 6  # "seven thousand ..." fits
    assert ids[0, -1] == config.vocabulary.encode("five")[0] and (ids[0, :-1] == nw.PAD_ID).all()
    np.testing.assert_array_equal(weights[:, :-1], 0)
    np.testing.assert_array_equal(weights[:, -1], 1)
    assert targets[1, -1] == 723 and targets[0, -1] == 5
    _, targets, weights = lang.encode(tiny(targets="per_step"), [723])
    np.testing.assert_array_equal(targets[0, -4:], [7, 700, 720, 723])
    np.testing.assert_array_equal(weights[0], [0, 0, 1, 1, 1, 1])


def test_splits_are_the_papers_and_beyond_needs_an_unseen_word():
    sets = lang.splits(tiny())
    assert [len(sets[k]) for k in ("train", "validation", "test", "beyond")] == [169, 200, 631, 12]
    assert sets["beyond"].min() >= 1000 and sets["beyond"].max() <= 9999
    vocab = tiny().vocabulary
    assert "thousand" not in nw.tokens_used(sets["train"], vocab)
    assert "beyond" not in lang.splits(tiny(beyond_size=0))


def test_padding_is_masked():
    """The prediction after the last word is what the layers give on the
    sentence alone: the front padding does not reach the LSTM (the same
    embedding and LSTM serve both models; only the head differs)."""
    import keras

    config = tiny()
    model_name = "NALU"
    model = lang.build_model(config, model_name)
    ids = config.vocabulary.encode_numbers([723, 5, 1205], config.length)
    full = lang.predict_steps(model, ids)[:, -1]
    head = model.get_layer("nalu" if model_name == "NALU" else "dense")
    for row, expected in zip(ids, full):
        words = row[row != nw.PAD_ID][None, :]
        x = model.get_layer("embedding")(words)
        alone = head(model.get_layer("drop_mask")(model.get_layer("lstm")(x)))
        value = float(keras.ops.convert_to_numpy(alone)[0, -1, 0])
        assert value == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_run_end_to_end_and_report(tmp_path):
    config = tiny(models=("lstm", "NALU"))
    assert config.models == ("LSTM", "NALU")
    calls = []
    rows, examples, curves = lang.run(config, progress=lambda m, s, n: calls.append((m, s, n)))
    assert sum(n for _, _, n in calls) == config.steps * 2
    assert [(r["model"], r["seed"]) for r in rows] == [("LSTM", 0), ("NALU", 0)]
    for row in rows:
        for split in ("train", "validation", "test", "beyond"):
            assert row[f"{split}_mae"] >= 0
        # the evaluated weights are those with the lowest validation MAE
        curve = [c for c in curves if c["model"] == row["model"]]
        assert [c["step"] for c in curve] == [20, 40]
        best = min(curve, key=lambda c: c["validation_mae"])
        assert row["best_step"] == best["step"]
        assert row["validation_mae"] == pytest.approx(best["validation_mae"], rel=1e-6)
        assert row["vocabulary"] == 30 and row["use_and"] is False
    by_number = {(e["model"], e["number"]): e for e in examples}
    assert by_number[("NALU", 723)]["words"] == "seven hundred twenty three"
    assert len(by_number[("NALU", 723)]["after_each_word"].split()) == 4
    assert by_number[("NALU", 1205)]["split"] == "beyond"
    assert by_number[("NALU", 7)]["split"] == "train"
    text, paths = lang.write_report(rows, examples, curves, config, str(tmp_path))
    assert "NALU" in text and "test MAE" in text
    names = sorted(os.path.basename(p) for p in paths)
    assert names == ["language_curves.csv", "language_examples.csv", "language_mae.png",
                     "language_runs.csv", "language_table.md"]
    for path in paths:
        assert os.path.getsize(path) > 0


def test_summary_is_the_median_over_seeds():
    config = tiny(seeds=3, models=("NALU",))
    rows = [{"model": "NALU", "seed": s, "best_step": 1, "train_mae": t, "validation_mae": t,
             "test_mae": t, "beyond_mae": t} for s, t in enumerate([1.0, 9.0, 4.0])]
    headers, body = lang.summary(rows, config)
    assert headers[1:5] == ["train MAE", "validation MAE", "test MAE", "beyond MAE"]
    assert body[0][1:5] == [4.0, 4.0, 4.0, 4.0]
    assert body[0][5] == "1–9"
    assert lang.representative_seed(rows, "NALU") == 2


@pytest.mark.parametrize("fields, message", [
    (dict(models=("GRU",)), "unknown model"),
    (dict(models=()), "models is empty"),
    (dict(models=("NALU", "nalu")), "duplicates"),
    (dict(seeds=0), "seeds"),
    (dict(steps=-5), "steps"),
    (dict(hidden=2.5), "hidden"),
    (dict(learning_rate=0), "learning_rate"),
    (dict(clipnorm=-1.0), "clipnorm"),
    (dict(targets="all"), "targets"),
    (dict(use_and="yes"), "use_and"),
    (dict(beyond_size=-1), "beyond_size"),
    (dict(split_seed=-2), "split_seed"),
    (dict(example_numbers=(10**7,)), "outside"),
])
def test_config_validation(fields, message):
    with pytest.raises(ValueError, match=message):
        lang.LanguageConfig(**fields)


def test_cli_rejects_bad_arguments_in_one_line(capsys):
    from nalu_keras.lab.cli import main

    assert main(["language", "--models", "LSTM,GRU", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "nalu-keras: error: unknown model 'GRU'; expected one of LSTM, NALU"
