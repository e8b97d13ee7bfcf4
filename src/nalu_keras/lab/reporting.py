"""Tables and figures from tidy result rows (lists of dicts)."""

from __future__ import annotations

import csv
import math
import os

import numpy as np


def write_csv(rows, path):
    """Write rows (dicts) to `path` as CSV, columns in first-seen order."""
    columns = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def finite_median(values):
    """Median of the finite values, NaN if there are none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def format_number(value):
    """A compact human-readable number: 3 significant digits, 'nan' / 'inf'."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.2e}"


def markdown_table(headers, body):
    """A GitHub-flavoured markdown table from headers and rows of cells."""
    cells = [[format_number(c) if not isinstance(c, str) else c for c in row] for row in body]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def text_table(headers, body):
    """The same table as plain aligned text, for the terminal."""
    cells = [[format_number(c) if not isinstance(c, str) else c for c in row] for row in body]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda row: "  ".join(str(c).rjust(w) for c, w in zip(row, widths))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, title=None):
    """Add the title, lay out, write `path` (creating folders), close; return path."""
    plt = pyplot()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_grouped_bars(panels, categories, path, ylabel, title=None, logy=True):
    """One panel per key of `panels`; in each, bars grouped by category.

    Args:
        panels: {panel title: {series label: [value per category]}}.
        categories: the category names (x axis).
    Non-finite values are drawn as a hatched bar at the top of the axis and
    marked "inf" or "nan", so an overflow is visible rather than missing.
    """
    plt = pyplot()
    names = list(panels)
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        series = panels[name]
        finite = [v for vals in series.values() for v in vals if np.isfinite(v) and v > 0]
        top = max(finite) * 10 if finite else 1.0
        width = 0.8 / max(1, len(series))
        for k, (label, values) in enumerate(series.items()):
            xs = np.arange(len(categories)) + (k - (len(series) - 1) / 2) * width
            heights = [v if np.isfinite(v) else top for v in values]
            bars = ax.bar(xs, heights, width, label=label)
            for bar, v in zip(bars, values):
                if not np.isfinite(v):
                    bar.set_hatch("//")
                    bar.set_alpha(0.5)
                    ax.annotate("nan" if np.isnan(v) else "inf", (bar.get_x() + bar.get_width() / 2, top),
                                ha="center", va="bottom", fontsize=6)
        ax.set_xticks(np.arange(len(categories)))
        ax.set_xticklabels(categories)
        if logy:
            ax.set_yscale("log")
        ax.axhline(100.0, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(name)
        ax.set_ylabel(ylabel)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path, title)
