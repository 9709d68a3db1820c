"""A sweep's grid and what its finished trials give: results.md (mean and 95% interval over seeds
per configuration, against the first), trials.csv (every trial) and scores.png (the held-out
score over batches). ``training/sweep.py`` runs the trials; this file reads them."""
import csv
import io
import math
import re
from pathlib import Path

import numpy as np
import optuna
from matplotlib.figure import Figure  # drawn headless, no pyplot, no global backend
from optuna.trial import TrialState
from scipy import stats

from training import bookkeeping, checkpoint, lengths, measuring

ROOT = Path(__file__).resolve().parent.parent
RUNS = "runs"                   # the trials' checkpoint folders, under the sweep folder
CSV_FILE = "trials.csv"
TABLE_FILE = "results.md"
PLOT_FILE = "scores.png"
# A complete trial's user attributes beside its grid point and "scores" (the held-out score of each
# test session): its last session's report, the run's training seconds (its batches' summed) and
# the batch of that session. Its value is the session's held-out score.
DISTRIBUTION = ("tv", "entropy_deficit_bits", "residue_tv", "coverage")  # of the held-out primes
PROBES = tuple(f"probe_{p}" for p in measuring.PROBE_PRIMES)  # D's hidden layer read for "a multiple of p"
IN_RANGE_PROBES = tuple(f"probe_in_range_{p}" for p in measuring.PROBE_PRIMES)  # the same, in range
CURVES = {"d": "discriminator", "g": "generator", "fold": lengths.FOLD}  # the length curves recorded
LENGTH_RESULTS = tuple(f"length_{key}_{digits}" for key in CURVES for digits in lengths.LENGTHS)
LEARNED_SCORE = 1.5             # "first_learned": the first session's batch with a held-out score >= this
RESULTS = ("in_range_score", "distinct_fraction", "p_value",
           *(f"multiples_{p}" for p in measuring.SMALL_PRIMES), "acceptance_rate", *DISTRIBUTION,
           "discriminator_accuracy", "discriminator_log_loss", *PROBES, *IN_RANGE_PROBES, "first_learned",
           "seconds", "seconds_per_batch", "batches", *LENGTH_RESULTS)
MEANS = ("value", *(k for k in RESULTS if k not in ("p_value", "batches")))  # over seeds
CSV_COLUMNS = ("number", "state", "configuration", "seed", "value", *RESULTS, "run_dir",
               "overrides", "invocation", "error", "scores")
CONFIDENCE = 0.95               # of the intervals in the table (Student t over seeds)


def slug(name: str) -> str:
    """A configuration's folder name: lower case, runs of other characters as one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def run_folder(folder: Path, point: tuple) -> Path:
    """The checkpoint folder of a grid point's training run."""
    return folder / RUNS / slug(point[0]) / f"seed{point[1]}"


def grid(sweep: dict, names=None) -> list:
    """The (configuration, seed) points of ``names`` (default: the selected ones), in file order."""
    return [(name, seed) for name in (names or sweep["selected"]) for seed in sweep["seeds"]]


def point_of(trial) -> tuple:
    """A trial's (configuration, seed)."""
    return trial.user_attrs.get("configuration"), trial.user_attrs.get("seed")


def completed(trials: list, sweep: dict) -> dict:
    """{grid point: its lowest-numbered complete trial} over every configuration of the file."""
    points = set(grid(sweep, list(sweep["configurations"])))
    return {point_of(t): t for t in sorted(trials, key=lambda t: t.number, reverse=True)  # lowest wins
            if t.state == TrialState.COMPLETE and point_of(t) in points}


def mean_ci(values: list) -> tuple:
    """(mean, CONFIDENCE half-width by Student's t or None for one value) of the values not None."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, None
    t = stats.t.ppf((1 + CONFIDENCE) / 2, len(values) - 1)
    return mean, float(t * np.std(values, ddof=1) / math.sqrt(len(values)))


def summarize(trials: list, sweep: dict) -> list:
    """Per configuration with a complete trial, in file order: its name, its number of complete
    seeds, (mean, CI half-width) of each of MEANS, and the largest p_value."""
    done = completed(trials, sweep)
    rows = []
    for name in sweep["configurations"]:
        runs = [done[(name, seed)] for seed in sweep["seeds"] if (name, seed) in done]
        if runs:
            rows.append({"configuration": name, "seeds": len(runs), "values": [t.value for t in runs],
                         "value": mean_ci([t.value for t in runs]),
                         # .get: trials of an older sweep.py lack the later attributes
                         **{key: mean_ci([t.user_attrs.get(key) for t in runs]) for key in MEANS[1:]},
                         # None: trials of an older sweep.py, which did not record it
                         "learned": (sum(t.user_attrs["first_learned"] is not None for t in runs)
                                     if all("first_learned" in t.user_attrs for t in runs) else None),
                         "p_value": max(t.user_attrs["p_value"] for t in runs)})
    return rows


def difference(values: list, reference: list) -> tuple:
    """(mean of ``values`` minus that of ``reference``, its CONFIDENCE half-width by Welch's t or
    None with fewer than 2 of either, what the interval says in words)."""
    a, b = np.asarray(values, float), np.asarray(reference, float)
    delta = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return delta, None, "one seed: no interval"
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0:
        return delta, 0.0, "higher" if delta > 0 else "lower" if delta < 0 else "no measurable effect"
    dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = float(stats.t.ppf((1 + CONFIDENCE) / 2, dof) * math.sqrt(va + vb))
    word = "higher" if delta - half > 0 else "lower" if delta + half < 0 else "no measurable effect"
    return delta, half, word


def _against(row: dict, first: dict) -> str:
    """The ``against the first row`` cell of the held-out score."""
    if row is first:
        return "(reference)"
    delta, half, word = difference(row["values"], first["values"])
    return f"{delta:+.3f}" + ("" if half is None else f" +- {half:.3f}") + f": {word}"


def cell(mean_ci: tuple, form: str, unit: str = "") -> str:
    """"mean +- half-width" (just the mean without an interval), each with ``unit``; n/a without."""
    mean, half = mean_ci
    if mean is None:
        return "n/a"
    return format(mean, form) + unit + ("" if half is None else f" +- {half:{form}}{unit}")


def _percent(mean_ci: tuple) -> tuple:
    return tuple(None if v is None else 100 * v for v in mean_ci)


def _probe_cell(row: dict, keys: tuple) -> str:
    """The probes' means as "a / b / c%" (n/a where a trial did not record them)."""
    if all(row[k][0] is None for k in keys):
        return "n/a"
    return " / ".join("n/a" if row[k][0] is None else f"{100 * row[k][0]:.0f}" for k in keys) + "%"


def format_table(rows: list, sweep: dict) -> str:
    """The markdown tables of ``summarize``'s rows, with what they show and the command that made them."""
    path = Path(sweep["path"])
    command = f"python training/sweep.py {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
    lines = [f"Held-out score: distinct primes among the outputs for latents beyond the training range, "
             f"over chance's count at the same magnitudes (a uniform odd sampler scores 1); in-range score: "
             f"the same on the training range. Mean +- {CONFIDENCE:.0%} confidence interval (Student t) "
             "over seeds; p-value: the largest over seeds; multiples: the shares of held-out outputs "
             "divisible by 3, 5 and 7 (chance: 33, 20 and 14%); against the first row "
             f"({rows[0]['configuration'] if rows else 'none'}): the held-out score's difference, with "
             f"its {CONFIDENCE:.0%} interval (Welch t), and whether that interval is above zero (higher), "
             "below it (lower) or holds it (no measurable effect).", "",
             "| configuration | seeds | held-out score | against the first row | in-range score | "
             "distinct outputs | p-value | multiples of 3 / 5 / 7 | training seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        seeds = str(row["seeds"]) + ("" if row["seeds"] == len(sweep["seeds"]) else
                                     f" of {len(sweep['seeds'])}")
        multiples = " / ".join(f"{100 * row[f'multiples_{q}'][0]:.1f}" for q in measuring.SMALL_PRIMES)
        lines.append(f"| {row['configuration']} | {seeds} | {cell(row['value'], '.3f')} | "
                     f"{_against(row, rows[0])} | {cell(row['in_range_score'], '.3f')} | "
                     f"{cell(_percent(row['distinct_fraction']), '.2f', '%')} | "
                     f"{measuring.p_value_text(row['p_value'])} | {multiples}% | "
                     f"{cell(row['seconds'], '.1f')} |")
    lines += ["", "The discriminator at the end, on uniform odd candidates at the held-out outputs' "
              "magnitudes, half of them prime (the balance it trained on; a constant scores 50% and "
              "log-loss 0.693); probe: a linear probe of its last hidden layer for \"a multiple of p\", "
              "held out (50%: nothing to read), beyond the range and in it; learned: the first test "
              f"session's batch with a held-out score of at least {LEARNED_SCORE} (mean over the seeds "
              "that got there):", "",
              "| configuration | balanced accuracy | log-loss | probe " + " / ".join(map(str, measuring.PROBE_PRIMES))
              + " beyond | in range | learned at batch | seconds per batch |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        probes = " | ".join(_probe_cell(row, keys) for keys in (PROBES, IN_RANGE_PROBES))
        learned = ("n/a" if row["learned"] is None else "never" if not row["learned"] else
                   f"{row['first_learned'][0]:.0f} ({row['learned']} of {row['seeds']})")
        lines.append(f"| {row['configuration']} | "
                     f"{cell(_percent(row['discriminator_accuracy']), '.1f', '%')} | "
                     f"{cell(row['discriminator_log_loss'], '.3f')} | {probes} | {learned} | "
                     f"{cell(row['seconds_per_batch'], '.2f')} |")
    lines += ["", "The held-out primes' distribution, against uniform over every prime in the windows of "
              "the held-out latents (a uniform sampler: tv 0, 0 bits, coverage 1; its residue tv is the "
              "noise floor, about 0.016 on 10,000 windows); kept: the share of latents the sampler kept:", "",
              "| configuration | kept | tv | entropy deficit (bits) | residue tv | coverage |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {row['configuration']} | {cell(_percent(row['acceptance_rate']), '.1f', '%')} | "
              f"{cell(row['tv'], '.3f')} | {cell(row['entropy_deficit_bits'], '.3f')} | "
              f"{cell(row['residue_tv'], '.4f')} | {cell(row['coverage'], '.3f')} |" for row in rows]
    return "\n".join(lines + _length_lines(rows) + ["", f"Made by `{command}`."]) + "\n"


def _length_lines(rows: list) -> list:
    """The length curves' tables, when some trial recorded them (``lengths``: the prime enrichment
    of the top 30% by score on uniform odd numbers of each length; chance 1, avoiding 3, 5, 7 2.19)."""
    lines = []
    for key, name in CURVES.items():
        shown = [row for row in rows if any(row[f"length_{key}_{d}"][0] is not None for d in lengths.LENGTHS)]
        if not shown:
            continue
        lines += ["", f"The length curve of the {name}: the prime share among its top {lengths.TOP_SHARE:.0%} "
                  "of uniform odd numbers of each length (binary digits) over their share among all "
                  f"(chance 1; avoiding 3, 5 and 7 exactly: 2.19); counted directly up to "
                  f"{lengths.DIRECT_LIMIT} digits, by the rough-number estimate beyond; n/a: it cannot "
                  "read numbers of that length:", "",
                  "| configuration | " + " | ".join(map(str, lengths.LENGTHS)) + " |",
                  "|---|" + "---|" * len(lengths.LENGTHS)]
        lines += [f"| {row['configuration']} | " + " | ".join(
            cell(row[f"length_{key}_{d}"], ".2f") for d in lengths.LENGTHS) + " |" for row in shown]
    return lines


def plot_scores(trials: list, sweep: dict) -> bytes:
    """PNG of the held-out score over batches: per configuration the mean over its complete seeds
    and a band from the lowest to the highest seed."""
    done = completed(trials, sweep)
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    for name in sweep["configurations"]:
        series = [dict(map(tuple, done[(name, s)].user_attrs["scores"]))
                  for s in sweep["seeds"] if (name, s) in done]
        if not series:
            continue
        batches = sorted(set.intersection(*(set(s) for s in series)))
        scores = np.array([[s[b] for b in batches] for s in series])
        line, = ax.plot(batches, scores.mean(axis=0), "o-", label=f"{name} ({len(series)} seeds)")
        ax.fill_between(batches, scores.min(axis=0), scores.max(axis=0), color=line.get_color(),
                        alpha=0.2)
    ax.axhline(1.0, color="gray", lw=0.8, ls="--", label="uniform odd sampler")
    ax.set_xlabel("batch")
    ax.set_ylabel("held-out score")
    ax.set_title(f"Sweep {sweep['name']}: mean over seeds, band from lowest to highest seed")
    ax.legend(loc="best", fontsize="small")
    return bookkeeping.png_bytes(fig)


def trials_csv(trials: list) -> str:
    """Every trial as a CSV row of CSV_COLUMNS (empty where a trial has no such value)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for trial in sorted(trials, key=lambda t: t.number):
        cells = {"number": trial.number, "state": trial.state.name,
                 "value": "" if trial.value is None else trial.value, **trial.user_attrs}
        writer.writerow([cells.get(column, "") for column in CSV_COLUMNS])
    return text.getvalue()


def write_outputs(study: optuna.Study, sweep: dict, folder: Path) -> str:
    """Rewrite CSV_FILE, TABLE_FILE and PLOT_FILE from the study, each atomically; returns the table."""
    trials = study.get_trials(deepcopy=False)
    table = format_table(summarize(trials, sweep), sweep)
    checkpoint.write_atomic(folder / CSV_FILE, trials_csv(trials).encode())
    checkpoint.write_atomic(folder / TABLE_FILE, table.encode())
    checkpoint.write_atomic(folder / PLOT_FILE, plot_scores(trials, sweep))
    return table
