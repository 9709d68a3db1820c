"""Run a sweep: every configuration of a sweep file times its seeds, as one Optuna study.

Each (configuration, seed) grid point is a train.py run under the sweep folder. Workers on one machine
(SQLite) or several (``--storage``, e.g. PostgreSQL) claim the points under a lock; a trial whose
heartbeat stops runs again from its checkpoint, and the same command goes on after a kill. Outputs:
trials.csv, results.md, scores.png. The user guide is docs/sweeps.md.

Usage, from any directory:
    python training/sweep.py SWEEP_FILE [--workers=N] [--only=NAME] [--storage=URL] [--name=value ...]
Exit status: 0 done, 1 some trial failed, 2 a user error (before any trial), 130 Ctrl-C.
"""
import contextlib
import io
import itertools
import logging
import multiprocessing
import os
import re
import runpy
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import utils  # noqa: E402
from training import rules  # noqa: E402

if __name__ in ("__main__", "__mp_main__"):  # the command, and its worker processes (spawned)
    utils.quiet_startup()  # before anything imports TensorFlow
    # Each trial builds new networks, whose tf.functions trace anew: expected, not worth a warning.
    logging.getLogger("tensorflow").addFilter(lambda r: "tf.function retracing" not in r.getMessage())
import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from training import checkpoint, lengths, measuring, train  # noqa: E402
from training.sweep_results import (CSV_FILE, CURVES, DISTRIBUTION, LEARNED_SCORE, LENGTH_RESULTS,  # noqa: E402
                                    PLOT_FILE, RUNS, TABLE_FILE, completed, grid, point_of, run_folder, slug,
                                    write_outputs)
from training.sweep_store import (ClaimLock, check_unchanged, claim, heartbeat, holder,  # noqa: E402
                                  masked, open_study, storage_url, trial_id)

# -- constants (override any as --name=value) ---------------------------------------------------
workers = 1                     # local worker processes, each running one trial at a time
only = ""                       # run only this configuration of the sweep file ("" = all of them)
storage = ""                    # Optuna RDB URL of the study, shared by every worker and machine,
                                # e.g. postgresql+psycopg://user:password@host/db ("" = the SQLite
                                # file study.db in the sweep folder)
sweep_dir = ""                  # folder of the runs and outputs ("" = beside the sweep file, named
                                # after it: training/sweeps/methods.py -> training/sweeps/methods/)
heartbeat_seconds = 10          # a running trial's worker records a heartbeat this often
grace_seconds = 30              # a running trial without a heartbeat this long is failed, run again
# -------------------------------------------------------------------------------------------------
DEFAULTS = {k: v for k, v in dict(globals()).items()
            if not k.startswith("_") and k.islower() and isinstance(v, (int, float, str, bool))}
RULES = {name: rules.at_least(1) for name in ("workers", "heartbeat_seconds", "grace_seconds")}
USAGE = ("usage: python training/sweep.py SWEEP_FILE [--name=value ...]   (run every configuration "
         "of the sweep file times its seeds; the same command again goes on)")
REQUIRED = ("SEEDS", "CONFIGURATIONS")  # what a sweep file must define (COMMON is optional)
SET_BY_SWEEP = ("seed", "checkpoint_dir")  # train.py constants each trial sets itself
LENGTH_SAMPLES = 10_000         # numbers per length of each trial's length curves (lengths.curve)
LOG_FILE = "train.log"          # in each run folder: what train.py printed, appended per attempt
# train.py's line for a test session (bookkeeping.session_line): each becomes a line of the sweep's own
SESSION_LINE = re.compile(r"^test session at batch (?P<batch>\d+): score (?P<in_range>\S+) in range, "
                          r"(?P<beyond>\S+) beyond\b")


class _Stopped(Exception):
    """Ctrl-C stopped a trial's training after its batch in progress."""


# ---------------------------------------------------------------------------------------------
# The sweep file


def _checked_configuration(path: str, name, overrides, seeds: tuple) -> list:
    """The ``--name=value`` argv of a configuration (COMMON and its own constants), checked as
    train.py checks it with each seed; raises OptimusError naming the configuration."""
    where = f"{path}: configuration {name!r}"
    if not isinstance(name, str) or not slug(name):
        raise utils.OptimusError(f"{where}: a name needs a letter or digit")
    if not isinstance(overrides, dict):
        raise utils.OptimusError(f"{where}: expected a dict of train.py constants, got {overrides!r}")
    for constant in SET_BY_SWEEP:
        if constant in overrides:
            raise utils.OptimusError(f"{where}: {constant} is set by the sweep for each trial; "
                                     "leave it out (seeds go in SEEDS)")
    argv = [f"--{key}={value if isinstance(value, str) else repr(value)}" for key, value in overrides.items()]
    try:
        for key, value in overrides.items():  # a type its --name=value text would hide (text for a number)
            if key in train.DEFAULTS:
                rules.check(key, value, train.DEFAULTS[key], train.RULES.get(key))
        config = train.parse_config(argv)
        for seed in seeds:  # train.py's own checks of each trial's seed, beside its constants
            train.parse_config(argv + [f"--seed={seed}"])
    except utils.OptimusError as err:
        raise utils.OptimusError(f"{where}: {err}") from None
    if measuring.beyond_range(config["high_latent"]) is None:
        raise utils.OptimusError(f"{where}: no latent is left beyond high_latent="
                                 f"{config['high_latent']} for the held-out score; lower it")
    return argv


def load_sweep(path: str, selected: str = "") -> dict:
    """Read and check a sweep file: {"name": its stem, "path", "seeds", "configurations": {name: argv},
    "selected": the names to run}. Raises OptimusError, one line, for a missing or broken file
    (whatever it raises but Ctrl-C, SystemExit included), a bad configuration or seed, or an unknown
    ``selected`` name."""
    file = Path(path)
    if not file.is_file():
        raise utils.OptimusError(f"{path}: no such sweep file")
    try:
        defined = runpy.run_path(str(file))
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # the file is the user's Python: any error is theirs
        raise utils.OptimusError(f"{path}: cannot run the sweep file ({type(err).__name__}: {err})")
    missing = [name for name in REQUIRED if name not in defined]
    if missing:
        raise utils.OptimusError(f"{path}: defines no {' or '.join(missing)} (see "
                                 "training/sweeps/methods.py for the form)")
    common, configurations, seeds = defined.get("COMMON", {}), defined["CONFIGURATIONS"], defined["SEEDS"]
    if not isinstance(seeds, (tuple, list)) or not seeds:
        raise utils.OptimusError(f"{path}: SEEDS must be a non-empty tuple of seeds (got {seeds!r})")
    seeds = tuple(rules.check(f"{path}: SEEDS: seed", s, 0, train.RULES["seed"]) for s in seeds)
    if len(set(seeds)) < len(seeds):
        raise utils.OptimusError(f"{path}: SEEDS repeats a seed: {seeds}")
    if not isinstance(configurations, dict) or not configurations:
        raise utils.OptimusError(f"{path}: CONFIGURATIONS must be a non-empty dict of named configurations")
    if not isinstance(common, dict):
        raise utils.OptimusError(f"{path}: COMMON must be a dict of train.py constants (got {common!r})")
    checked, folders = {}, {}
    for name, own in configurations.items():
        overrides = {**common, **own} if isinstance(own, dict) else own
        checked[name] = _checked_configuration(path, name, overrides, seeds)
        folder = slug(name)
        if folder in folders:
            raise utils.OptimusError(f"{path}: configurations {folders[folder]!r} and {name!r} would "
                                     f"share the run folder {folder!r}; rename one")
        folders[folder] = name
    if selected and selected not in checked:
        raise utils.OptimusError(f"--only={selected}: no such configuration in {path} "
                                 f"(known: {', '.join(repr(n) for n in checked)})")
    return {"name": file.stem, "path": str(file.resolve()), "seeds": seeds,
            "configurations": checked, "selected": [selected] if selected else list(checked)}


# ---------------------------------------------------------------------------------------------
# One trial


def _wait_for_folder(directory: Path, seconds: int, label: str) -> None:
    """Wait while another process trains in ``directory`` (a trial declared dead, yet alive)."""
    for attempt in itertools.count():
        try:
            os.close(checkpoint.lock(directory))
            return
        except utils.OptimusError:
            if not attempt:
                print(f"{label}: waiting for {directory}, where an earlier attempt still trains", flush=True)
            time.sleep(seconds)


class _Progress(io.TextIOBase):
    """A trial's stdout: all of it to its log file, and a line on the sweep's output per test session."""

    def __init__(self, log, out, label: str, nb_batches: int):
        self.log, self.out, self.label, self.nb_batches = log, out, label, nb_batches
        self.partial = ""  # the line being written

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log.write(text)
        *lines, self.partial = (self.partial + text).split("\n")
        for line in lines:
            session = SESSION_LINE.match(line)
            if session:
                print(f"{self.label}: batch {session['batch']}/{self.nb_batches}, held-out score "
                      f"{session['beyond']}, in range {session['in_range']}", file=self.out, flush=True)
        return len(text)

    def flush(self) -> None:
        self.log.flush()


def train_and_score(sweep: dict, point: tuple, folder: Path, settings: dict, label: str) -> tuple:
    """Train (or resume) a grid point's run: (held-out score, user attributes: RESULTS and "scores",
    [batch, held-out score] per test session). Raises _Stopped when Ctrl-C stopped it early."""
    run = run_folder(folder, point)
    config = train.parse_config(sweep["configurations"][point[0]]
                                + [f"--seed={point[1]}", f"--checkpoint_dir={run}"])
    checkpoint.check_writable(run)
    _wait_for_folder(run, settings["heartbeat_seconds"], label)
    with open(run / LOG_FILE, "a") as log, contextlib.redirect_stdout(
            _Progress(log, sys.stdout, label, config["nb_batches"])):
        if log.tell():  # an earlier attempt wrote here, and may have died mid-line
            print()
        print(f"--- {label}, {time.strftime('%Y-%m-%d %H:%M:%S')}")
        state = train.train(config)
    if state["batch"] < config["nb_batches"]:
        raise _Stopped(f"stopped by Ctrl-C after batch {state['batch']}")
    last = state["tests"][-1]
    beyond = last["beyond"]
    curves = lengths.checkpoint_curves(*checkpoint.load_networks(run), samples=LENGTH_SAMPLES, calibration=False)
    judged = beyond["discriminator_on_uniform"]  # half primes: the balance D trained on
    seconds = sum(row["seconds"] for row in state["history"])
    measures = beyond["distribution"] or {}  # none for a point-mass generator on sampled latents
    return beyond["score"], {
        "in_range_score": last["in_range"]["score"], "distinct_fraction": beyond["distinct_fraction"],
        "p_value": beyond["p_value"],
        **{f"multiples_{p}": beyond["multiples"][str(p)] for p in measuring.SMALL_PRIMES},
        "acceptance_rate": beyond["acceptance_rate"], **{k: measures.get(k) for k in DISTRIBUTION},
        "discriminator_accuracy": judged["balanced_accuracy"], "discriminator_log_loss": judged["log_loss"],
        **{f"probe_{p}": judged["multiple_probe"][str(p)] for p in measuring.PROBE_PRIMES},
        **{f"probe_in_range_{p}": (last["in_range"]["discriminator_on_uniform"] or {}).get(
            "multiple_probe", {}).get(str(p)) for p in measuring.PROBE_PRIMES},
        "first_learned": next((t["batch"] for t in state["tests"] if t["beyond"]["score"] >= LEARNED_SCORE),
                              None),
        "seconds": round(seconds, 3), "seconds_per_batch": round(seconds / len(state["history"]), 4),
        "batches": last["batch"],
        **dict.fromkeys(LENGTH_RESULTS),  # None: a curve it has not (the fold, for residues) or a length it cannot read
        **{f"length_{key}_{row['digits']}": (None if row["method"] == "n/a" else round(row["enrichment"], 4))
           for key, name in CURVES.items() for row in curves.get(name, [])},
        "scores": [[t["batch"], t["beyond"]["score"]] for t in state["tests"]]}


def _finish(study: optuna.Study, trial, attributes: dict, value=None, state=None) -> bool:
    """Record a trial's attributes and end; False if it had already been failed (heartbeat lapsed)."""
    try:
        for key, item in attributes.items():
            trial.set_user_attr(key, item)
        ended = study.tell(trial, value, state=state, skip_if_finished=True)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    return ended.state == (state or TrialState.COMPLETE)


def run_trial(study: optuna.Study, storage, trial, sweep: dict, settings: dict, folder: Path) -> None:
    """Run a claimed trial to its end and print its line; rewrites the outputs when it completes."""
    point = point_of(trial)
    if point not in grid(sweep, list(sweep["configurations"])):
        # ask made an empty trial, as another machine's worker took the waiting one first; or a
        # worker that died while claiming left one for a point the sweep file no longer has
        _finish(study, trial, {}, state=TrialState.PRUNED)
        return
    label = f"trial {trial.number} ({point[0]}, seed {point[1]})"
    first = holder(study.get_trials(deepcopy=False), trial.number, point)
    if first is not None:  # another machine's worker claimed the same point in the same instant
        _finish(study, trial, {}, state=TrialState.PRUNED)
        print(f"{label}: trial {first} holds this grid point; skipped", flush=True)
        return
    with heartbeat(storage, trial_id(storage, study, trial.number), settings["heartbeat_seconds"]):
        try:
            value, attributes = train_and_score(sweep, point, folder, settings, label)
        except utils.OptimusError as err:
            message = utils.one_line(err)
            _finish(study, trial, {"error": message}, state=TrialState.FAIL)
            print(f"{label} failed: {message}", flush=True)
            return
        except (_Stopped, KeyboardInterrupt) as err:
            message = str(err) if isinstance(err, _Stopped) else "abandoned by a second Ctrl-C"
            _finish(study, trial, {"error": message}, state=TrialState.FAIL)
            print(f"{label} {message}", flush=True)
            raise
    if not _finish(study, trial, attributes, value):
        print(f"{label} ended after its heartbeat had lapsed; another trial holds its grid point", flush=True)
        return
    done = completed(study.get_trials(deepcopy=False), sweep)
    print(f"[{sum(p in done for p in grid(sweep))}/{len(grid(sweep))}] {label}: held-out score "
          f"{value:.3f}, in range {attributes['in_range_score']:.3f}, distinct "
          f"{attributes['distinct_fraction']:.2%}, p {measuring.p_value_text(attributes['p_value'])}, "
          f"{attributes['seconds']:.1f} s training", flush=True)
    write_outputs(study, sweep, folder)


def work(study: optuna.Study, storage, sweep: dict, settings: dict, folder: Path, invocation: str) -> None:
    """One worker: run trials until no selected grid point is left waiting or running. On Ctrl-C,
    fails the trial in progress and raises _Stopped or KeyboardInterrupt."""
    lock = ClaimLock(storage_url(settings, folder), folder, study.study_name)
    while True:
        trial = claim(study, storage, sweep, invocation, lock)
        if trial is not None:
            run_trial(study, storage, trial, sweep, settings, folder)
        elif running(study.get_trials(deepcopy=False), sweep):
            time.sleep(settings["heartbeat_seconds"])  # till they end, or their heartbeat lapses
        else:
            return


def running(trials: list, sweep: dict) -> list:
    """The running trials of selected grid points."""
    points = set(grid(sweep))
    return [t for t in trials if t.state == TrialState.RUNNING and point_of(t) in points]


def _worker_process(settings: dict, sweep: dict, folder: str, invocation: str) -> None:
    """Entry of a spawned worker process: ``work``, with the command's exit statuses."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study, storage = open_study(settings, sweep, Path(folder))
        work(study, storage, sweep, settings, Path(folder), invocation)
    except utils.OptimusError as err:
        utils.print_error(err)
        sys.exit(2)
    except (_Stopped, KeyboardInterrupt):
        sys.exit(130)


# ---------------------------------------------------------------------------------------------
# Command line


def parse_arguments(argv: list) -> tuple:
    """(sweep file path, settings): the one positional argument, and the constants with overrides."""
    files = [a for a in argv if not a.startswith("--")]
    if len(files) != 1:
        raise utils.OptimusError(f"expected one sweep file, got {len(files)} ({USAGE})")
    settings = rules.parse_overrides([a for a in argv if a.startswith("--")], DEFAULTS, RULES)
    if settings["grace_seconds"] <= settings["heartbeat_seconds"]:
        raise utils.OptimusError(
            f"--grace_seconds={settings['grace_seconds']}: must be more than heartbeat_seconds="
            f"{settings['heartbeat_seconds']}, or a live trial could be failed between two heartbeats")
    return files[0], settings


def _run_workers(study: optuna.Study, storage, sweep: dict, settings: dict, folder: Path,
                 count: int) -> tuple:
    """This process and count - 1 spawned ones work the grid till done or Ctrl-C: (whether this
    process was stopped, the other workers' processes, ended)."""
    invocation = uuid.uuid4().hex
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: TensorFlow does not fork
    processes = [spawn.Process(target=_worker_process, name=f"worker {i}",
                               args=(settings, sweep, str(folder), invocation))
                 for i in range(2, count + 1)]  # this process is worker 1
    for process in processes:
        process.start()
    stopped = False
    try:
        work(study, storage, sweep, settings, folder, invocation)
    except (_Stopped, KeyboardInterrupt):
        stopped = True
    for process in processes:
        while process.is_alive():  # a Ctrl-C reached the workers too: wait for them to stop
            try:
                process.join()
            except KeyboardInterrupt:
                pass
    for process in processes:
        if process.exitcode not in (0, 130):
            print(f"{process.name} ended with status {process.exitcode}", flush=True)
    return stopped, processes


def main(argv: list) -> int:
    """Command-line entry: 0 when every selected grid point has a complete trial, 1 when some
    trial failed, 2 on a user error (before any trial starts), 130 when stopped by Ctrl-C."""
    if rules.wants_help(argv):
        print(rules.help_text(USAGE, DEFAULTS, rules.constant_docs(__file__)))
        return 0
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the sweep prints its own line per trial
    try:
        path, settings = parse_arguments(argv)
        sweep = load_sweep(path, settings["only"])
        folder = Path(settings["sweep_dir"] or Path(sweep["path"]).with_suffix("")).resolve()
        checkpoint.check_writable(folder)
        study, storage = open_study(settings, sweep, folder)
        check_unchanged(study, sweep)
    except utils.OptimusError as err:
        utils.print_error(err)
        return 2
    trials = study.get_trials(deepcopy=False)
    points = grid(sweep)
    left = len(set(points) - set(completed(trials, sweep)))  # grid points without a complete trial
    count = max(1, min(settings["workers"], left))  # no more workers than trials to run
    print(f"Sweep {sweep['name']}: {len(sweep['selected'])} configuration(s) x {len(sweep['seeds'])} "
          f"seed(s), {len(points) - left} of {len(points)} trials done before; {count} worker(s); "
          f"runs in {folder / RUNS}; study in {masked(storage_url(settings, folder))}", flush=True)
    if running(trials, sweep):
        print(f"{len(running(trials, sweep))} trial(s) were running already: any whose worker is gone "
              f"runs again once its heartbeat has lapsed for {settings['grace_seconds']} s", flush=True)
    stopped, processes = _run_workers(study, storage, sweep, settings, folder, count)
    table = write_outputs(study, sweep, folder)
    print(f"\n{table}\nOutputs: {folder / CSV_FILE}, {folder / TABLE_FILE}, {folder / PLOT_FILE}", flush=True)
    if stopped or any(p.exitcode == 130 for p in processes):
        print("Stopped by Ctrl-C; run the same command to go on.", file=sys.stderr, flush=True)
        return 130
    missing = len(set(points) - set(completed(study.get_trials(deepcopy=False), sweep)))
    if missing:
        print(f"error: {missing} of {len(points)} trials did not complete (see the lines above); "
              "run the same command to retry them", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
