"""Rebuild a benchmark table (with the published comparison) from per-seed rows.

    python docs/results/scripts/bench_report.py RUNS.csv OUT_DIR --units NAU,NMU \
        --ops add,sub --seeds 100 --schedule fast [--steps N] [--preset library]

copies RUNS.csv to OUT_DIR/bench_runs.csv and writes OUT_DIR/bench_table.md and
OUT_DIR/bench_success.png as `nalu-keras bench` does (no training).
"""

import argparse
import os
import shutil

from nalu_keras.lab.cli import _csv_list, _unit_list
from nalu_keras.lab.experiments import benchmark


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs")
    parser.add_argument("out")
    parser.add_argument("--units", required=True, type=_unit_list)
    parser.add_argument("--ops", required=True, type=_csv_list)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--schedule", default="fast")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--log-every", type=int)
    parser.add_argument("--preset", default="reference")
    args = parser.parse_args()
    config = benchmark.BenchConfig(units=args.units, ops=args.ops, seeds=args.seeds,
                                   schedule=args.schedule, steps=args.steps,
                                   log_every=args.log_every, preset=args.preset)
    os.makedirs(args.out, exist_ok=True)
    shutil.copyfile(args.runs, os.path.join(args.out, benchmark.RUNS_FILE))
    open(os.path.join(args.out, benchmark.CURVES_FILE), "a").close()
    text, _ = benchmark.write_report(config, args.out)
    print(text)


if __name__ == "__main__":
    main()
