"""The `nalu-keras` command: parses arguments and delegates to experiments."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


class CLIError(Exception):
    """A user error: reported as one line, exit status 2."""


def _csv_list(text):
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return tuple(items)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def prepare_out_dir(path):
    """Create `path` if needed and check that files can be written there."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as error:
        raise CLIError(f"cannot write to output directory {path!r}: {error.strerror or error}")
    return path


def _progress(total, description):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="run", file=sys.stderr)


def cmd_demo(args):
    from nalu_keras.experiments import demo

    try:
        config = demo.DemoConfig(
            ops=args.ops, models=args.models, seeds=args.seeds, steps=args.steps
        )
    except ValueError as error:
        raise CLIError(str(error))
    out = prepare_out_dir(args.out)
    start = time.perf_counter()
    with _progress(len(config.runs()), "demo") as bar:

        def advance(row):
            bar.set_postfix_str(f"{row['model']} {row['op']} seed {row['seed']}")
            bar.update(1)

        rows = demo.run(config, progress=advance)
    elapsed = time.perf_counter() - start
    table, paths = demo.write_report(rows, config, out)
    print(table)
    print(f"\n{len(rows)} runs in {elapsed:.0f} s. Wrote {', '.join(paths)}.")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="nalu-keras",
        description="Neural arithmetic units: experiments and reproductions.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="train NAC, NALU and an MLP on a+b and a*b; print and plot extrapolation",
        description="Train NAC, NALU and a ReLU6 MLP (100 -> 2 -> 1) on a+b and "
        "a*b from U[1,2] inputs and measure how they extrapolate.",
    )
    demo.add_argument("--ops", type=_csv_list, default=("add", "mul"),
                      help="comma-separated ops: add,sub,mul,div,squared,root (default add,mul)")
    demo.add_argument("--models", type=_csv_list, default=("NAC", "NALU", "ReLU6"),
                      help="comma-separated models: NAC,NALU,ReLU6,Linear (default NAC,NALU,ReLU6)")
    demo.add_argument("--seeds", type=_positive_int, default=3, help="seeds per model and op (default 3)")
    demo.add_argument("--steps", type=_positive_int, default=5000, help="training steps (default 5000)")
    demo.add_argument("--out", default="nalu-keras-demo", help="output directory (default ./nalu-keras-demo)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv=None):
    # TensorFlow, when installed, is imported by Keras' data utilities even on
    # the JAX backend; keep its start-up log lines out of the command's output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CLIError as error:
        print(f"nalu-keras: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nalu-keras: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
