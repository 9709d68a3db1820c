"""The run's bookkeeping: its per-batch CSV log, the metrics plot, the TensorBoard events, its
console lines and what a Ctrl-C does. train.py calls these around its loop; none changes training."""
import contextlib
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure  # drawn headless: no pyplot, no global backend

import utils
from training import checkpoint, registry

CSV_COLUMNS = ("batch", "skipped", "kept", "primes", "prime_share", "output_min", "output_median",
               "output_max", "discriminator_loss_first", "discriminator_loss_last",
               "generator_loss_first", "generator_loss_last", "belief_last", "reward_last",
               "entropy_last", "prime_ratio_last", "seconds")  # the log's first columns, in every run;
                                # any other number in a batch's row follows them (``log_columns``)
TENSORBOARD_DIR = "tensorboard"  # the run's TensorBoard events, in checkpoint_dir
BELIEF_BINS = 20                # bins of the histogram of D's beliefs in each batch's candidates


ABANDONED = ("Abandoned the batch in progress; the last saved checkpoint is intact. "
             "Run the same command to resume.")


class StopFlag:
    """First Ctrl-C asks to stop after the batch in progress; a second ends the process at once, which
    leaves the last committed checkpoint, as a kill -9 does."""
    requested = False

    def __call__(self):
        if self.requested:
            utils.end_at_once(ABANDONED)
        self.requested = True
        # os.write, not print: the handler can interrupt a print, and a reentrant print raises
        message = b"\nCtrl-C: finishing this batch and saving (press again to abandon it)\n"
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):  # no fd: still stops
            os.write(sys.stdout.fileno(), message)


def _numbers(row: dict) -> dict:
    """The row's scalar entries (its histograms' counts are lists)."""
    return {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def log_columns(rows: list) -> tuple:
    """CSV_COLUMNS, then every other number the rows hold, in their order: a new per-batch metric
    is one entry of train.run_batch's row (or of a phase's logs), and the log and TensorBoard follow."""
    extra = dict.fromkeys(k for row in rows for k in _numbers(row) if k not in CSV_COLUMNS)
    return CSV_COLUMNS + tuple(extra)


def write_log_files(directory: Path, state: dict, plot: bool) -> None:
    """Rewrite the per-batch CSV log and, with ``plot``, the metrics plot, both atomically (and
    neither when it already holds what state.json gives)."""
    columns = log_columns(state["history"])
    lines = [",".join(columns)]
    lines += [",".join("" if row.get(c) is None else str(row[c]) for c in columns) for row in state["history"]]
    checkpoint.write_if_changed(directory / checkpoint.CSV_FILE, ("\n".join(lines) + "\n").encode())
    if plot:
        checkpoint.write_if_changed(directory / checkpoint.PLOT_FILE, plot_metrics(state))


def plot_metrics(state: dict) -> bytes:
    """PNG of the test sessions' scores over the batch index, in range and beyond, drawn headless."""
    tests = state["tests"]
    batches = [t["batch"] for t in tests]
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    for name, style in (("in_range", "o-"), ("beyond", "s--")):
        scores = [t[name]["score"] for t in tests if t.get(name)]
        if scores:
            ax.plot(batches[:len(scores)], scores, style, label=f"score, {name.replace('_', ' ')}")
    ax.axhline(1.0, color="gray", lw=0.8, ls="--", label="uniform odd sampler")
    ceiling = registry.ceiling(state["config"])
    if ceiling is not None:  # what avoiding the primes the discriminator sees can give
        ax.axhline(ceiling[0], color="gray", lw=0.8, ls=":",
                   label=f"ceiling {ceiling[0]:.2f}: no factor <= {ceiling[1]}")
    if tests:
        sd = tests[-1]["in_range"]["score_sd"]
        ax.axhspan(1 - 2 * sd, 1 + 2 * sd, color="gray", alpha=0.15, label="chance, +-2 sd")
    ax.set_xlabel("batch")
    ax.set_ylabel("score: distinct primes / chance's")
    ax.legend(loc="best")
    n = tests[-1]["in_range"]["n_samples"] if tests else 0
    ax.set_title(f"Optimus test sessions ({n} latents per range)")
    return png_bytes(fig)


def png_bytes(fig: Figure) -> bytes:
    """A figure drawn headless as PNG bytes, for an atomic write."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


class Events:
    """The run's TensorBoard events in checkpoint_dir/TENSORBOARD_DIR, one step per batch, written from
    state.json's rows after each save (so none passes the last saved batch); a resumed run first drops
    events past its batch (a killed run's) and writes the rows the events miss."""

    def __init__(self, directory: Path, state: dict):
        self.folder, self._writer = directory / TENSORBOARD_DIR, None
        batches, sessions = self._keep_until(state["batch"])
        for row in state["history"]:
            if row["batch"] > batches:
                self.batch(row, flush=False)
        for report in state["tests"]:
            if report["batch"] > sessions:
                self.session(report, flush=False)
        if self._writer is not None:
            self._writer.flush()

    @property
    def writer(self):
        """The events writer, made when the first event is written (a file of its own)."""
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.folder))
        return self._writer

    def _keep_until(self, batch: int) -> tuple:
        """Rewrite the events to those of steps <= batch; (last batch, last session) they hold."""
        files = sorted(self.folder.glob("*tfevents*")) if self.folder.is_dir() else []
        kept, dropped, last = [], 0, {"batch": 0, "session": 0}
        for path in files:
            for record in tf.data.TFRecordDataset(str(path)):
                event = tf.compat.v1.Event.FromString(record.numpy())
                if event.step > batch:
                    dropped += 1
                    continue
                kept.append(record.numpy())
                for value in event.summary.value:
                    kind = "session" if value.tag.startswith("session/") else "batch"
                    last[kind] = max(last[kind], event.step)
        if dropped:
            path = self.folder / f"events.out.tfevents.{int(time.time())}.kept-until-batch-{batch}"
            with tf.io.TFRecordWriter(str(path)) as out:
                for record in kept:
                    out.write(record)
            for old in files:
                old.unlink()
        return last["batch"], last["session"]

    def batch(self, row: dict, flush: bool = True) -> None:
        """The scalars (every number: ``_last`` dropped from the names) and histograms of one batch's row."""
        with self.writer.as_default(step=row["batch"]):
            for name, value in _numbers(row).items():  # every number of the row but the step itself
                if name != "batch":
                    tf.summary.scalar(f"batch/{name.removesuffix('_last')}", value)
            if row.get("offset_counts"):
                tf.summary.histogram("batch/offsets_chosen", np.repeat(
                    np.arange(len(row["offset_counts"])), row["offset_counts"]), buckets=len(row["offset_counts"]))
            if row.get("belief_counts"):
                centres = (np.arange(BELIEF_BINS) + 0.5) / BELIEF_BINS
                tf.summary.histogram("batch/discriminator_beliefs", np.repeat(centres, row["belief_counts"]),
                                     buckets=BELIEF_BINS)
        if flush:
            self.writer.flush()

    def session(self, report: dict, flush: bool = True) -> None:
        """The scalars of one test session's report, for each range."""
        with self.writer.as_default(step=report["batch"]):
            for name in ("in_range", "beyond"):
                r = report.get(name)
                if r is None:
                    continue
                measures = r["distribution"] or {}
                judged = r["discriminator_on_uniform"] or {}
                for tag, value in (("score", r["score"]), ("acceptance_rate", r["acceptance_rate"]),
                                   ("discriminator_accuracy_uniform", judged.get("balanced_accuracy")),
                                   *((key, measures.get(key)) for key in (
                                       "tv", "entropy_deficit_bits", "residue_tv", "coverage"))):
                    if value is not None:
                        tf.summary.scalar(f"session/{name}/{tag}", value)
        if flush:
            self.writer.flush()


def session_line(batch: int, result: dict) -> str:
    """The console line of a test session."""
    scores = ", ".join(f"{r['score']:.3f} {name.replace('_', ' ')}"
                       for name, r in result.items() if isinstance(r, dict) and "score" in r)
    return f"test session at batch {batch}: score {scores} (chance 1)"


def progress(row: dict) -> str:
    """The rest of a batch's console line."""
    if row["skipped"]:
        return f"no prime among the candidates: skipped ({row['seconds']:.2f} s)"
    belief = f"  belief {row['belief_last']:.3f}" if "belief_last" in row else ""
    return (f"D's batch {row['kept']}  primes {row['prime_share']:.1%}  "
            f"d_loss {row['discriminator_loss_last']:.4f}  g_loss {row['generator_loss_last']:.4f}"
            f"{belief}  {row['seconds']:.2f} s")
