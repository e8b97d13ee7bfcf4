"""The `nalu-keras` command end to end on tiny budgets, and its errors."""

import csv

import pytest

from nalu_keras.lab.cli import main


def run_cli(argv):
    """Exit status of the command, whether it returns or exits (argparse)."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def is_png(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_static_quick_writes_csv_markdown_and_plot(tmp_path, capsys):
    out = tmp_path / "static"
    code = run_cli(["static", "--quick", "--ops", "add,mul", "--models", "NAC,ReLU6",
                    "--seeds", "2", "--steps", "30", "--out", str(out)])
    assert code == 0
    rows = read_csv(out / "static_runs.csv")
    assert len(rows) == 2 * 2 * 2  # ops x models x seeds
    assert {(r["op"], r["model"]) for r in rows} == {
        ("add", "NAC"), ("add", "ReLU6"), ("mul", "NAC"), ("mul", "ReLU6")}
    for column in ("interp_norm", "extrap_norm", "extrap_solved", "steps", "learning_rate", "seed"):
        assert column in rows[0]
    assert all(r["steps"] == "30" for r in rows)
    table = (out / "static_table.md").read_text()
    assert "| a+b |" in table and "NAC extrap" in table
    assert is_png(out / "static_extrapolation.png")
    printed = capsys.readouterr().out
    assert "Table 1 (static)" in printed and "a*b" in printed


def test_recurrent_quick_reports_each_test_length(tmp_path):
    out = tmp_path / "rec"
    assert run_cli(["recurrent", "--quick", "--ops", "add", "--models", "NAC,LSTM",
                    "--seeds", "1", "--steps", "20", "--out", str(out)]) == 0
    rows = read_csv(out / "recurrent_runs.csv")
    assert len(rows) == 2
    assert {"interp_norm", "extrap_T100_norm", "extrap_T1000_norm", "extrap_values_norm"} <= set(rows[0])
    assert is_png(out / "recurrent_extrapolation.png")


def test_identity_writes_curve_and_figure(tmp_path):
    out = tmp_path / "id"
    assert run_cli(["identity", "--models", "ReLU,PReLU,Threshold", "--seeds", "2",
                    "--steps", "20", "--out", str(out)]) == 0
    runs = read_csv(out / "identity_runs.csv")
    assert len(runs) == 6 and {r["activation"] for r in runs} == {"ReLU", "PReLU", "Threshold"}
    curve = read_csv(out / "identity_curve.csv")
    assert len(curve) == 3 * 401
    assert float(curve[0]["x"]) == -20.0 and float(curve[-1]["x"]) == 20.0
    assert is_png(out / "fig1.png")
    assert "| ReLU |" in (out / "fig1.md").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["static", "--ops", "add,pow"], "unknown op 'pow'"),
        (["static", "--models", "GRU"], "unknown static model 'GRU'"),
        (["recurrent", "--models", "ReLU6"], "unknown recurrent model 'ReLU6'"),
        (["identity", "--models", "Swish"], "unknown activation 'Swish'"),
        (["static", "--ranges", "wide"], "unknown range preset 'wide'"),
        (["static", "--ranges", "U[1,2]:U[oops]"], "Cannot parse value range"),
        (["static", "--steps", "0"], "positive integer"),
        (["static", "--steps", "many"], "positive integer"),
        (["recurrent", "--seeds", "-3"], "positive integer"),
        (["identity", "--lr", "0"], "positive number"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_nonzero_with_a_message(argv, message, capsys, tmp_path):
    out = tmp_path / "never"
    if argv[0] != "frobnicate":
        argv = argv + ["--out", str(out)]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing was run or written


def test_unwritable_out_dir_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert run_cli(["static", "--steps", "5", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("nalu-keras: error: cannot write to output directory")
