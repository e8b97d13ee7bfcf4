"""The `nalu-keras` command: parses arguments and delegates to experiments."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import tempfile
import time

from nalu_keras.validation import MAX_STEPS

QUICK = {
    "identity": dict(models=3, steps=2000),
    "static": dict(seeds=3, steps=3000, eval_size=1000, pool_size=8192, baseline_models=4),
    "recurrent": dict(ops=("add", "sub", "mul"), seeds=2, steps=1500, eval_size=500,
                      pool_size=4096, baseline_models=4),
    "bench": dict(seeds=8, steps=3000, log_every=250),
    "mnist": dict(steps=10, batch_size=8, test_sequences=50),
    "language": dict(seeds=2, steps=3000, eval_every=500),
    "product": dict(seeds=2, steps=150, batch_size=32, test_sequences=200),
}


class CLIError(Exception):
    """A user error: reported as one line, exit status 2."""


def _csv_list(text):
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text!r}")
    return value


def _step_count(text):
    value = _positive_int(text)
    if value > MAX_STEPS:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_STEPS:,} steps can be run (the step counter of the compiled training "
            f"program is a 32-bit integer), got {text!r}")
    return value


def prepare_out_dir(path):
    """Create `path` if needed and check that files can be written there."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as error:
        raise CLIError(f"cannot write to output directory {path!r}: {error.strerror or error}") from None
    return path


def _progress(total, description, unit):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit=unit, file=sys.stderr)


def _overrides(args, mapping):
    """Config fields set on the command line (None means: not given)."""
    return {field: getattr(args, arg) for arg, field in mapping.items()
            if getattr(args, arg, None) is not None}


def _make_config(factory, quick, overrides):
    fields = dict(quick)
    fields.update(overrides)
    try:
        return factory(**fields)
    except ValueError as error:
        raise CLIError(str(error)) from None


# -- experiments --------------------------------------------------------------
def identity_config(args):
    from nalu_keras.lab.experiments.identity import IdentityConfig

    return _make_config(
        IdentityConfig,
        QUICK["identity"] if args.quick else {},
        _overrides(args, {"models": "activations", "seeds": "models", "steps": "steps",
                          "lr": "learning_rate"}),
    )


def function_config(args, kind):
    from nalu_keras.lab.experiments.function_learning import (
        RECURRENT_MODELS,
        STATIC_MODELS,
        FunctionLearningConfig,
    )

    base = {"kind": kind, "models": STATIC_MODELS if kind == "static" else RECURRENT_MODELS}
    if args.quick:
        base.update(QUICK[kind])
    return _make_config(
        FunctionLearningConfig,
        base,
        _overrides(args, {"ops": "ops", "models": "models", "seeds": "seeds",
                          "steps": "steps", "lr": "learning_rate", "ranges": "ranges"}),
    )


def run_identity(config, out):
    from nalu_keras.lab.experiments import identity

    with _progress(len(config.activations), "Fig. 1 identity", "activation") as bar:
        def advance(activation):
            bar.set_postfix_str(activation)
            bar.update(1)

        rows, curves = identity.run(config, progress=advance)
    return identity.write_report(rows, curves, config, out)


def run_function(config, out):
    from nalu_keras.lab.experiments import function_learning

    total = len(config.ops) * len(config.models)
    with _progress(total, f"Table 1 {config.kind}", "config") as bar:
        def advance(op, model):
            bar.set_postfix_str(f"{op} {model}")
            bar.update(1)

        rows = function_learning.run(config, progress=advance)
    return function_learning.write_report(rows, config, out)


def _report(title, table, paths, elapsed):
    print(f"\n== {title} ==\n{table}")
    print(f"({elapsed:.0f} s) wrote: {', '.join(paths)}")


def cmd_identity(args):
    config = identity_config(args)
    out = prepare_out_dir(args.out)
    start = time.perf_counter()
    table, paths = run_identity(config, out)
    _report("Fig. 1: MLPs on the identity", table, paths, time.perf_counter() - start)
    return 0


def cmd_function(args):
    config = function_config(args, args.command)
    out = prepare_out_dir(args.out)
    start = time.perf_counter()
    table, paths = run_function(config, out)
    _report(f"Table 1 ({args.command})", table, paths, time.perf_counter() - start)
    return 0


def cmd_reproduce(args):
    """Fig. 1 and both halves of Table 1 into one directory."""
    configs = [
        ("Fig. 1: MLPs on the identity", run_identity, identity_config(args)),
        ("Table 1 (static)", run_function, function_config(args, "static")),
        ("Table 1 (recurrent)", run_function, function_config(args, "recurrent")),
    ]
    out = prepare_out_dir(args.out)
    total = time.perf_counter()
    for title, runner, config in configs:
        start = time.perf_counter()
        table, paths = runner(config, out)
        _report(title, table, paths, time.perf_counter() - start)
    print(f"\nAll done in {time.perf_counter() - total:.0f} s; results in {out}")
    return 0


# The overview's many-seed table: the Primer's single-module task (one unit
# reads two inputs), short enough for a couple of minutes on two cores.
OVERVIEW_BENCH = dict(suite="primer", units=("NALU", "NAC+", "NAU", "NMU"), ops=("add", "sub", "mul"),
                      seeds=20, steps=20_000)
OVERVIEW_NOTE = """\
Fig. 1: every MLP fits y = x inside [-5, 5] and misses it outside (ratio = MAE
outside / MAE inside), as Trask et al. (2018) show. Table: the Primer's single-module
task (y = x1 op x2, one unit, train U[1,2], test U[2,6]); success = extrapolation MSE
below the threshold of an almost exact unit. Trask et al. report the NALU learning
+, - and x; over many seeds it rarely does (Madsen & Johansen 2020: NALU 14 % on +
and -, 0 % on x in their Table 1), while the NAU (+, -) and the NMU (x) succeed.
The NAC+ (weights tanh(W) * sigmoid(M), exact only in the limit) does not get within
the threshold in this budget. Full protocol: `nalu-keras bench`."""


def cmd_overview(args):
    """Fig. 1's extrapolation failure and a many-seed success table, in minutes."""
    from nalu_keras.lab.experiments import benchmark
    from nalu_keras.lab.experiments.benchmark import BenchConfig
    from nalu_keras.lab.reporting import text_table

    out = prepare_out_dir(args.out)
    total = time.perf_counter()
    start = time.perf_counter()
    table, paths = run_identity(identity_config(argparse.Namespace(quick=True, models=None, seeds=None,
                                                                   steps=None, lr=None)), out)
    _report("Fig. 1: MLPs on the identity", table, paths, time.perf_counter() - start)

    config = BenchConfig(**OVERVIEW_BENCH, workers=args.workers)
    start = time.perf_counter()
    try:
        benchmark.check_out(config, out)
        with _progress(len(config.configurations()), "success table", "config") as bar:
            def advance(unit, op, pair, skipped):
                bar.set_postfix_str(f"{unit} {op}" + (" (done before)" if skipped else ""))
                bar.update(1)

            benchmark.run(config, out, progress=advance)
        _, paths = benchmark.write_report(config, out)
        summaries = benchmark.summary(benchmark.load_runs(out, config), config)
    except ValueError as error:
        raise CLIError(str(error)) from None
    grid = text_table(*benchmark.success_grid(summaries, config))
    _report(f"Success over {config.seeds} seeds, {config.total_steps} steps each (95 % CI)", grid, paths,
            time.perf_counter() - start)
    print("\n" + OVERVIEW_NOTE)
    print(f"\nAll done in {time.perf_counter() - total:.0f} s; results in {out}")
    return 0


def _unit_list(text):
    """Comma-separated units; a piece "σ"/"sigma" joins the previous one (NAC•,σ)."""
    units = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        if piece.lower() in ("σ", "sigma") and units:
            units[-1] = units[-1] + "," + piece
        else:
            units.append(piece)
    return tuple(units)


def _range_list(text):
    """A sweep name or 'INTERP:EXTRAP' pairs separated by ';'."""
    return tuple(p.strip() for p in text.split(";") if p.strip())


def bench_config(args):
    from nalu_keras.lab.experiments.benchmark import BenchConfig

    fields = {"schedule": args.schedule, "suite": args.suite, "input_size": args.inputs,
              "preset": args.preset, "subsets": args.subsets}
    if args.quick:
        fields.update(QUICK["bench"])
    overrides = {}
    for arg, field, parse in (("units", "units", _unit_list), ("ops", "ops", _csv_list),
                              ("ranges", "ranges", _range_list)):
        text = getattr(args, arg)
        if text is not None:
            try:
                overrides[field] = parse(text)
            except argparse.ArgumentTypeError:
                overrides[field] = ()
            if not overrides[field]:
                raise CLIError(f"--{arg} is empty")
    overrides.update(_overrides(args, {"seeds": "seeds", "steps": "steps", "workers": "workers",
                                       "log_every": "log_every", "lr": "learning_rate",
                                       "seed_group": "seed_group"}))
    return _make_config(BenchConfig, fields, overrides)


def cmd_bench(args):
    from nalu_keras.lab.experiments import benchmark

    config = bench_config(args)
    out = prepare_out_dir(args.out)
    start = time.perf_counter()
    configurations = config.configurations()
    try:
        benchmark.check_out(config, out)
        with _progress(len(configurations), "bench", "config") as bar:
            def advance(unit, op, pair, skipped):
                bar.set_postfix_str(f"{unit} {op} {pair}" + (" (done before)" if skipped else ""))
                bar.update(1)

            benchmark.run(config, out, progress=advance)
        table, paths = benchmark.write_report(config, out)
    except ValueError as error:
        raise CLIError(str(error)) from None
    title = "Primer single-module benchmark" if config.suite == "primer" else "Madsen & Johansen benchmark"
    _report(f"{title} ({config.schedule}, {config.total_steps} steps, "
            f"{config.seeds} seeds)", table, paths, time.perf_counter() - start)
    return 0


def mnist_config(args):
    from nalu_keras.lab.experiments.mnist_sequences import MnistSequenceConfig

    overrides = _overrides(args, {"tasks": "tasks", "models": "models", "seeds": "seeds",
                                  "steps": "steps", "lr": "learning_rate",
                                  "batch_size": "batch_size", "test_sequences": "test_sequences",
                                  "digits_source": "digits_source", "mnist_path": "mnist_path",
                                  "state_init": "state_init"})
    if args.lengths is not None:
        try:
            overrides["lengths"] = tuple(int(n) for n in _csv_list(args.lengths))
        except (ValueError, argparse.ArgumentTypeError):
            raise CLIError(f"--lengths must be comma-separated integers, got {args.lengths!r}") from None
    return _make_config(MnistSequenceConfig, QUICK["mnist"] if args.quick else {}, overrides)


def cmd_mnist(args):
    from nalu_keras.lab.data import DataError
    from nalu_keras.lab.experiments import mnist_sequences

    config = mnist_config(args)
    try:
        images = config.load_images()
        config.resolve_padding(images.image_shape)
    except (DataError, ValueError) as error:
        raise CLIError(str(error)) from None
    print(f"data: {images.describe()}")
    out = prepare_out_dir(args.out)
    start = time.perf_counter()
    total = len(mnist_sequences.configurations(config)) * config.steps
    with _progress(total, "MNIST sequences", "step") as bar:
        def advance(task, model, seed, steps):
            bar.set_postfix_str(f"{task} {model} seed {seed}")
            bar.update(steps)

        rows = mnist_sequences.run(config, progress=advance, images=images)
    table, paths = mnist_sequences.write_report(rows, config, out)
    _report(f"MNIST sequences (Table 2 and parity), {images.name}", table, paths,
            time.perf_counter() - start)
    return 0


def language_config(args):
    from nalu_keras.lab.experiments.language import LanguageConfig

    overrides = _overrides(args, {"models": "models", "seeds": "seeds", "steps": "steps",
                                  "lr": "learning_rate", "targets": "targets"})
    if args.use_and:
        overrides["use_and"] = True
    return _make_config(LanguageConfig, QUICK["language"] if args.quick else {}, overrides)


def cmd_language(args):
    from nalu_keras.lab.experiments import language

    config = language_config(args)
    out = prepare_out_dir(args.out)
    start = time.perf_counter()
    total = len(config.models) * config.seeds * config.steps
    with _progress(total, "Table 3 language", "step") as bar:
        def advance(model, seed, steps):
            bar.set_postfix_str(f"{model} seed {seed}")
            bar.update(steps)

        rows, examples, curves = language.run(config, progress=advance)
    table, paths = language.write_report(rows, examples, curves, config, out)
    _report("Table 3: number words to numbers (MAE, median over seeds)", table, paths,
            time.perf_counter() - start)
    return 0


def product_config(args):
    from nalu_keras.lab.experiments.sequential_product import SequentialProductConfig

    overrides = _overrides(args, {"models": "models", "seeds": "seeds", "steps": "steps",
                                  "lr": "learning_rate", "batch_size": "batch_size",
                                  "test_sequences": "test_sequences",
                                  "test_length": "test_length", "criterion": "criterion",
                                  "digits_source": "digits_source",
                                  "mnist_path": "mnist_path"})
    return _make_config(SequentialProductConfig, QUICK["product"] if args.quick else {},
                        overrides)


def cmd_product(args):
    from nalu_keras.lab.data import DataError
    from nalu_keras.lab.experiments import sequential_product

    config = product_config(args)
    try:
        images = config.load_images()
        config.encoder_config().resolve_padding(images.image_shape)
    except (DataError, ValueError) as error:
        raise CLIError(str(error)) from None
    print(f"data: {images.describe()}")
    out = prepare_out_dir(args.out)
    start = time.perf_counter()
    total = len(sequential_product.configurations(config)) * config.steps
    with _progress(total, "sequential product", "step") as bar:
        def advance(model, seed, steps):
            bar.set_postfix_str(f"{model} seed {seed}")
            bar.update(steps)

        rows = sequential_product.run(config, progress=advance, images=images)
    table, paths = sequential_product.write_report(rows, config, out)
    _report(f"Sequential MNIST product, {images.name} (successes vs the reference)", table,
            paths, time.perf_counter() - start)
    return 0


# -- parser -------------------------------------------------------------------
def _common(parser, default_out):
    parser.add_argument("--steps", type=_step_count, help="training steps per model")
    parser.add_argument("--seeds", type=_positive_int, help="seeds (models) per configuration")
    parser.add_argument("--lr", type=_positive_float, help="Adam learning rate")
    parser.add_argument("--quick", action="store_true",
                        help="a small budget that finishes in a minute or two")
    parser.add_argument("--out", default=default_out, help=f"output directory (default ./{default_out})")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="nalu-keras",
        description="Neural arithmetic units: reproductions of the NALU paper's experiments.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    identity = sub.add_parser(
        "identity", help="Fig. 1: MLPs with 15 activations learning the identity",
        description="MLPs learn y = x on U[-5,5]; their error is measured over [-20,20]. "
        "--seeds is the number of models per activation; --models selects activations.")
    identity.add_argument("--models", type=_csv_list, help="activations, e.g. ReLU,Tanh (default all 15)")
    _common(identity, "results")
    identity.set_defaults(func=cmd_identity)

    for kind, models in (("static", "ReLU6,None,NAC,NALU"), ("recurrent", "LSTM,ReLU,NAC,NALU")):
        p = sub.add_parser(
            kind, help=f"Table 1 ({kind}): simple function learning",
            description=f"Simple function learning, {kind} version, scored as "
            "100·MSE/MSE(untrained model).")
        p.add_argument("--ops", type=_csv_list, help="add,sub,mul,div,squared,root (default all)")
        p.add_argument("--models", type=_csv_list, help=f"default {models}")
        p.add_argument("--ranges", help="a preset, default (U[0,1] -> U[1,5]) or madsen (U[1,2] -> U[2,6]), "
                       "or an explicit 'INTERP:EXTRAP' pair, e.g. 'U[-2,2]:[-6,-2]u[2,6]'")
        _common(p, "results")
        p.set_defaults(func=cmd_function)

    bench = sub.add_parser(
        "bench", help="Madsen & Johansen's arithmetic benchmark (100 -> 2 -> 1, many seeds)",
        description="Trains every (unit, op, range pair) with all seeds at once (JAX), "
        "scores success / solved-at / sparsity error, and writes bench_*.csv, bench_table.md, "
        "bench_success.png and bench_curves.png. Resumable: finished configurations in --out "
        "are skipped.")
    bench.add_argument("--suite", default="madsen", choices=("madsen", "primer"),
                       help="madsen: 100 -> 2 -> 1 on sums of subsets (default); primer: one unit "
                       "on two inputs (the Primer's single-module task, ops add,sub,mul,div)")
    bench.add_argument("--inputs", type=_positive_int, help="input size (default 100 for madsen, 2 for "
                       "primer; the primer's larger variants use 10 and 100)")
    bench.add_argument("--units", help="NAU,NMU,NAC+,NAC•,NAC•,σ,NAC*NMU,NALU,Linear,ReLU,ReLU6,"
                       "NPU,RealNPU (ASCII: NAC*, NAC*sigma, NAC*NMU; default NAU,NMU)")
    bench.add_argument("--preset", choices=("reference", "library"),
                       help="reference (default for madsen): every model built and trained as in "
                       "Madsen & Johansen's code (their initializations, biases, PyTorch's Adam "
                       "with eps 1e-8); library (default for primer): this library's layer "
                       "defaults and Keras' Adam")
    bench.add_argument("--subsets", choices=("per-seed", "shared"),
                       help="per-seed (default with --preset reference): each seed's subsets start "
                       "at an offset drawn from the seed, as the reference seeds its data; shared "
                       "(default with --preset library): every seed has the subsets of task seed 0")
    bench.add_argument("--ops", help="add,sub,mul,div,squared,root (default add,mul)")
    bench.add_argument("--ranges", help="'INTERP:EXTRAP' pairs separated by ';' or a sweep: "
                       "'madsen' (7 pairs) or 'primer' (9 pairs); default 'U[1,2]:U[2,6]'")
    bench.add_argument("--seeds", type=_positive_int, help="seeds per configuration (default 100)")
    bench.add_argument("--schedule",
                       help="fast (5e4 steps), paper (5e6 steps) or primer (5e4 steps, both "
                       "warm-ups 2e4 -> 3.5e4); default fast for madsen, primer for primer")
    bench.add_argument("--steps", type=_step_count, help="override the schedule's steps (fast, "
                       "primer: the sparsity warm-up is scaled along; paper: it stays at the "
                       "reference's absolute steps)")
    bench.add_argument("--log-every", dest="log_every", type=_positive_int, help="log every N steps (default 1000)")
    bench.add_argument("--lr", type=_positive_float, help="Adam learning rate (default 1e-3)")
    bench.add_argument("--workers", type=_positive_int, help="processes to share out the seed "
                       "groups (default 1; 2 uses both cores of a two-core machine); changes the "
                       "speed, never the numbers")
    bench.add_argument("--seed-group", dest="seed_group", type=_positive_int,
                       help="seeds trained together in one compiled program (default half the "
                       "seeds, at most 100); results can differ with it at float32 rounding")
    bench.add_argument("--quick", action="store_true", help="8 seeds, 3000 steps")
    bench.add_argument("--out", default="results", help="output directory (default ./results)")
    bench.set_defaults(func=cmd_bench)

    mnist = sub.add_parser(
        "mnist", help="Table 2: MNIST counting and addition over digit sequences, and parity",
        description="A CNN reads each digit image, a recurrent core (LSTM, NAC, NALU, NAU) the "
        "sequence; trained on length 10 from the training images, tested on longer sequences "
        "of test images. Images: --mnist-path, else Keras' cached mnist.npz, else "
        "scikit-learn's 8x8 digits (--digits-source). Nothing is downloaded.")
    mnist.add_argument("--tasks", type=_csv_list, help="counting,addition,parity (default all)")
    mnist.add_argument("--models", type=_csv_list, help="LSTM,NAC,NALU,NAU (default all)")
    mnist.add_argument("--lengths", help="test lengths, default 10,100,1000")
    mnist.add_argument("--mnist-path", dest="mnist_path", help="an mnist.npz file to use")
    mnist.add_argument("--digits-source", dest="digits_source",
                       help="auto (default), mnist or sklearn")
    mnist.add_argument("--batch-size", dest="batch_size", type=_positive_int,
                       help="training sequences per step (default 32)")
    mnist.add_argument("--test-sequences", dest="test_sequences", type=_positive_int,
                       help="test sequences per length (default 1000)")
    mnist.add_argument("--state-init", dest="state_init",
                       help="identity (default: arithmetic cores start as accumulators) or "
                       "default (the units' own initializers)")
    _common(mnist, "results")
    mnist.set_defaults(func=cmd_mnist)

    language = sub.add_parser(
        "language", help="Table 3: English number words to numbers (embedding, LSTM, NALU)",
        description="Sentences such as 'seven hundred twenty three' for 0..999, split 169 / 200 / "
        "631 (train / validation / test); Embedding -> LSTM -> NALU(1) against LSTM -> "
        "Dense(1); mean absolute error per split, plus numbers 1,000..9,999 ('beyond').")
    language.add_argument("--models", type=_csv_list, help="LSTM,NALU (default both)")
    language.add_argument("--targets", help="final (default: the loss on the last word) or "
                          "per_step (the running value after every word)")
    language.add_argument("--use-and", dest="use_and", action="store_true",
                          help="write 'seven hundred and twenty three' (30 tokens, not 29)")
    _common(language, "results")
    language.set_defaults(func=cmd_language)

    product = sub.add_parser(
        "product", help="Madsen & Johansen's sequential MNIST product (NMU, NAC*, NALU, LSTM)",
        description="A CNN reads each digit (1..9), a recurrent unit keeps the running product; "
        "trained on length 2, tested on lengths 1..20, success = error no worse than a reference "
        "model whose unit is fixed to the exact product. Images: --mnist-path, else Keras' "
        "cached mnist.npz, else scikit-learn's 8x8 digits (--digits-source). Nothing is "
        "downloaded.")
    product.add_argument("--models", type=_csv_list,
                         help="NMU,NAC*,NALU,LSTM (default all; the reference is always trained)")
    product.add_argument("--mnist-path", dest="mnist_path", help="an mnist.npz file to use")
    product.add_argument("--digits-source", dest="digits_source",
                         help="auto (default), mnist or sklearn")
    product.add_argument("--batch-size", dest="batch_size", type=_positive_int,
                         help="training sequences per step (default 64)")
    product.add_argument("--test-sequences", dest="test_sequences", type=_positive_int,
                         help="test sequences (default 1000)")
    product.add_argument("--test-length", dest="test_length", type=_positive_int,
                         help="longest test length (default 20)")
    product.add_argument("--criterion", help="reference bar: max (default), median or paired")
    _common(product, "results")
    product.set_defaults(func=cmd_product)

    reproduce = sub.add_parser(
        "reproduce", help="Fig. 1 and Table 1 (static and recurrent) in one go",
        description="Runs identity, static and recurrent with their defaults (or --quick).")
    _common(reproduce, "results")
    reproduce.set_defaults(func=cmd_reproduce)

    overview = sub.add_parser(
        "overview", help="the field's finding in a few minutes: Fig. 1's extrapolation failure and a "
        "20-seed success table (NALU, NAC+, NAU, NMU on +, -, x)",
        description="Fig. 1 at quick size, then the Primer's single-module task over 20 seeds: the NALU "
        "fails where the NAU and NMU succeed. Resumable: rerun the same command to finish an "
        "interrupted run.")
    overview.add_argument("--workers", type=_positive_int, default=min(2, os.cpu_count() or 1),
                          help="processes for the success table (default: 2, or 1 on a one-core machine)")
    overview.add_argument("--out", default="results", help="output directory (default ./results)")
    overview.set_defaults(func=cmd_overview)
    return parser


def _end_on_interrupt(signum, frame):
    """Ctrl-C: end the worker processes and this one at once, with one line.

    Unwinding through a running XLA program or through worker pools can crash
    or print tracebacks; every result file is written whole-or-not-at-all
    (or appended and checked on the next run), so ending here loses nothing
    that was finished, and rerunning a resumable command continues."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.kill()
    # the resource tracker of the worker pool would report "leaked semaphore"
    # objects once this process is gone; they are the kernel's to reclaim
    try:
        from multiprocessing import resource_tracker

        tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
        if tracker:
            os.kill(tracker, signal.SIGKILL)
    except (ImportError, AttributeError, OSError):
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os.write(2, b"\nnalu-keras: interrupted\n")
    os._exit(130)


def main(argv=None):
    # TensorFlow, when installed, is imported by Keras' seeding utility even on
    # the JAX backend; keep its start-up log lines out of the command's output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ.get("KERAS_BACKEND", "jax") != "tensorflow":
        # TensorFlow serves only Keras' seeding there; its oneDNN banner would
        # be printed by every worker process (spawned workers inherit this)
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    from nalu_keras.lab import require_lab

    try:
        require_lab()
    except ImportError as error:
        print(f"nalu-keras: error: {error}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    import threading

    handle = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT)
    if handle:
        signal.signal(signal.SIGINT, _end_on_interrupt)
    try:
        return args.func(args)
    except CLIError as error:
        print(f"nalu-keras: error: {error}", file=sys.stderr)
        return 2
    finally:
        if handle:
            signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
