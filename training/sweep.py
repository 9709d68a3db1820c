"""Run a sweep: every configuration of a sweep file times its seeds, as one Optuna study.

A sweep file (see training/sweeps/methods.py) names configurations, each a dict of train.py
constants, and the seeds to run them with. Each (configuration, seed) grid point is one trial: one
train.py run in its own folder, ``runs/<configuration>/seed<S>/`` under the sweep folder, whose
value is the held-out score of its last test session (``measuring.evaluate`` beyond the training range)
and whose user attributes hold the rest of that report and the training seconds.

The trials live in an Optuna study that any number of workers share. Workers take the grid points
one at a time, under a lock (on PostgreSQL an advisory lock in the database, which serves every
machine; else a file lock in the sweep folder), so no point runs twice at once; each running
trial records a heartbeat, and a trial whose heartbeat stops for ``grace_seconds`` (its worker was
killed) is failed and run again: its folder resumes from its last checkpoint. Running the command
again skips finished trials and retries failed ones. After every finished trial, and at the end,
the sweep folder gets ``trials.csv`` (every trial), ``results.md`` (mean +- 95% CI over seeds per
configuration) and ``scores.png`` (held-out score over batches); the table is printed at the end.
A running trial prints one line per test session (its batch and scores); train.py's own output
goes to the run folder's ``train.log``.

The study is kept in the SQLite file ``study.db`` in the sweep folder unless ``--storage`` names
another Optuna RDB URL (PostgreSQL, MySQL): then the same command, run on several machines, shares
the grid. On PostgreSQL (``postgresql+psycopg://user:password@host/db``) any number of machines
may start at once, on an empty database too, and each grid point is claimed once; elsewhere a
point two machines claim in the same instant runs once, the other claim being skipped. Each
machine trains in its own sweep folder; a trial that dies on one machine and is taken up by
another resumes there only if ``--sweep_dir`` is on a filesystem both can reach. The URL's
password is shown as ***.

Usage, from any directory:
    python training/sweep.py SWEEP_FILE [--workers=N] [--only=NAME] [--storage=URL] [--name=value ...]
(any constant below; --help lists them). A sweep file is Python that sweep.py runs: a bad sweep
file (one that raises anything, SystemExit included), configuration, name, value (of another type
than its train.py constant's: text is not a number) or seed prints one line ``error: ...`` and
exits with status 2, before any trial starts; a trial that fails prints one line and the
command exits with status 1 once the others are done; Ctrl-C stops every worker after its batch
in progress (status 130), and the same command goes on from there.
"""
import contextlib
import csv
import fcntl
import hashlib
import io
import json
import logging
import math
import multiprocessing
import os
import re
import runpy
import sys
import threading
import time
import urllib.parse
import uuid
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import utils  # noqa: E402
from training import rules  # noqa: E402

if __name__ in ("__main__", "__mp_main__"):  # the command, and its worker processes (spawned)
    utils.quiet_startup()  # before anything imports TensorFlow
    # Each trial builds new networks, whose tf.functions trace anew: expected, not worth a warning.
    logging.getLogger("tensorflow").addFilter(lambda r: "tf.function retracing" not in r.getMessage())
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import sqlalchemy  # noqa: E402  (Optuna's database layer)
import sqlalchemy.exc  # noqa: E402
import sqlalchemy.pool  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402  (drawn headless, no pyplot, no global backend)
from scipy import stats  # noqa: E402

from training import checkpoint, measuring, train  # noqa: E402

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
RULES = {
    "workers": rules.at_least(1),
    "heartbeat_seconds": rules.at_least(1),
    "grace_seconds": rules.at_least(1),
}
USAGE = ("usage: python training/sweep.py SWEEP_FILE [--name=value ...]   (run every configuration "
         "of the sweep file times its seeds; the same command again goes on)")
REQUIRED = ("SEEDS", "CONFIGURATIONS")  # what a sweep file must define (COMMON is optional)
SET_BY_SWEEP = ("seed", "checkpoint_dir")  # train.py constants each trial sets itself
STUDY_FILE = "study.db"         # the default storage, in the sweep folder
SQLITE_TIMEOUT = 60             # seconds a worker waits for another's write to the SQLite file
CLAIM_LOCK = "claim.lock"       # held while a local worker picks and claims a grid point (not
                                # PostgreSQL: there an advisory lock serves every machine)
PG_SCHEMA_LOCK = "optimus sweep: schema"  # PostgreSQL advisory lock while Optuna creates its tables
PG_CLAIM_LOCK = "optimus sweep: claim "   # ... and, with the study's name, while a worker claims
RUNS = "runs"                   # the trials' checkpoint folders, under the sweep folder
LOG_FILE = "train.log"          # in each run folder: what train.py printed, appended per attempt
# train.py's line for a test session (its _session_line): each becomes a line of the sweep's own
SESSION_LINE = re.compile(r"^test session at batch (?P<batch>\d+): score (?P<in_range>\S+) in range, "
                          r"(?P<beyond>\S+) beyond\b")
CSV_FILE = "trials.csv"
TABLE_FILE = "results.md"
PLOT_FILE = "scores.png"
# A complete trial's user attributes beside its grid point and "scores" (the held-out score of each
# test session): its last session's report, the run's training seconds (its batches' summed) and
# the batch of that session. Its value is the session's held-out score.
DISTRIBUTION = ("tv", "entropy_deficit_bits", "residue_tv", "coverage")  # of the held-out primes
PROBES = tuple(f"probe_{p}" for p in measuring.PROBE_PRIMES)  # D's hidden layer read for "a multiple of p"
LEARNED_SCORE = 1.5             # "first_learned": the first session's batch with a held-out score >= this
RESULTS = ("in_range_score", "distinct_fraction", "p_value", "multiples_3", "multiples_5",
           "multiples_7", "acceptance_rate", *DISTRIBUTION, "discriminator_accuracy",
           "discriminator_log_loss", *PROBES, "first_learned", "seconds", "seconds_per_batch", "batches")
MEANS = ("value", "in_range_score", "distinct_fraction", "multiples_3", "multiples_5",
         "multiples_7", "acceptance_rate", *DISTRIBUTION, "discriminator_accuracy",
         "discriminator_log_loss", *PROBES, "first_learned", "seconds", "seconds_per_batch")  # over seeds
CSV_COLUMNS = ("number", "state", "configuration", "seed", "value", *RESULTS, "run_dir",
               "overrides", "invocation", "error", "scores")
CONFIDENCE = 0.95               # of the intervals in the table (Student t over seeds)


class _Stopped(Exception):
    """Ctrl-C stopped a trial's training after its batch in progress."""


# ---------------------------------------------------------------------------------------------
# The sweep file


def _slug(name: str) -> str:
    """A configuration's folder name: lower case, runs of other characters as one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _argv(overrides: dict) -> list:
    """A dict of train.py constants as ``--name=value`` arguments (text values as they are)."""
    return [f"--{name}={value if isinstance(value, str) else repr(value)}"
            for name, value in overrides.items()]


def _check_types(overrides: dict) -> None:
    """Refuse a value whose type is not its train.py constant's (text for a number, a bool for an
    int; an int may stand for a float), which its ``--name=value`` text would hide."""
    for name, value in overrides.items():
        if name in train.DEFAULTS:
            rules.check(name, value, train.DEFAULTS[name], train.RULES.get(name))


def _checked_configuration(path: str, name, overrides, seeds: tuple) -> list:
    """The argv of one configuration of a sweep file (COMMON and its own constants), checked as
    train.py checks it with each seed; raises OptimusError naming the configuration."""
    where = f"{path}: configuration {name!r}"
    if not isinstance(name, str) or not _slug(name):
        raise utils.OptimusError(f"{where}: a name needs a letter or digit")
    if not isinstance(overrides, dict):
        raise utils.OptimusError(f"{where}: expected a dict of train.py constants, got {overrides!r}")
    for constant in SET_BY_SWEEP:
        if constant in overrides:
            raise utils.OptimusError(f"{where}: {constant} is set by the sweep for each trial; "
                                     "leave it out (seeds go in SEEDS)")
    argv = _argv(overrides)
    try:
        _check_types(overrides)
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
    """Read and check a sweep file: every configuration must pass ``train.parse_config``.

    Returns {"name": the file's stem, "path", "seeds": tuple, "configurations": {name: argv}
    (COMMON then the configuration's own), "selected": the names to run (``selected`` or all)}.
    Raises OptimusError, one line, for a missing or broken file, a bad configuration or seed,
    or an unknown ``selected`` name. A sweep file is code: whatever it raises but a Ctrl-C
    (SystemExit included) is such an error.
    """
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
    common, configurations, seeds = (defined.get("COMMON", {}), defined["CONFIGURATIONS"],
                                     defined["SEEDS"])
    if not isinstance(seeds, (tuple, list)) or not seeds:
        raise utils.OptimusError(f"{path}: SEEDS must be a non-empty tuple of seeds (got {seeds!r})")
    seeds = tuple(rules.check(f"{path}: SEEDS: seed", s, 0, train.RULES["seed"]) for s in seeds)
    if len(set(seeds)) < len(seeds):
        raise utils.OptimusError(f"{path}: SEEDS repeats a seed: {seeds}")
    if not isinstance(configurations, dict) or not configurations:
        raise utils.OptimusError(f"{path}: CONFIGURATIONS must be a non-empty dict of named "
                                 "configurations")
    if not isinstance(common, dict):
        raise utils.OptimusError(f"{path}: COMMON must be a dict of train.py constants (got {common!r})")
    checked, folders = {}, {}
    for name, own in configurations.items():
        checked[name] = _checked_configuration(path, name, {**common, **own} if isinstance(own, dict) else own,
                                               seeds)
        folder = _slug(name)
        if folder in folders:
            raise utils.OptimusError(f"{path}: configurations {folders[folder]!r} and {name!r} would "
                                     f"share the run folder {folder!r}; rename one")
        folders[folder] = name
    if selected and selected not in checked:
        raise utils.OptimusError(f"--only={selected}: no such configuration in {path} "
                                 f"(known: {', '.join(repr(n) for n in checked)})")
    return {"name": file.stem, "path": str(file.resolve()), "seeds": seeds,
            "configurations": checked, "selected": [selected] if selected else list(checked)}


def grid(sweep: dict, names=None) -> list:
    """The (configuration, seed) points of ``names`` (default: the selected ones), in file order."""
    return [(name, seed) for name in (names or sweep["selected"]) for seed in sweep["seeds"]]


def run_folder(folder: Path, point: tuple) -> Path:
    """The checkpoint folder of a grid point's training run."""
    return folder / RUNS / _slug(point[0]) / f"seed{point[1]}"


# ---------------------------------------------------------------------------------------------
# The study


def storage_url(settings: dict, folder: Path) -> str:
    """The study's RDB URL: ``--storage``, else the SQLite file STUDY_FILE in the sweep folder."""
    return settings["storage"] or f"sqlite:///{folder / STUDY_FILE}"


def _userinfo(url: str) -> tuple | None:
    """(what precedes the password, the password, what follows it) of a URL that has one."""
    scheme, found, rest = url.partition("://")
    user, colon, password = rest.rpartition("@")[0].partition(":")
    if not found or not colon:
        return None
    return f"{scheme}://{user}:", password, rest[len(user) + 1 + len(password):]


def masked(url: str) -> str:
    """``url`` as sweep.py shows it: its password, if any, as ***."""
    parts = _userinfo(url)
    return url if parts is None else f"{parts[0]}***{parts[2]}"


def _hide_password(text: str, url: str) -> str:
    """``text`` (a database's error message) with ``url`` masked, and its password too where the
    message quotes the user's ``name:password@``, as written or percent-decoded."""
    parts = _userinfo(url)
    if parts is None:
        return text
    text = text.replace(url, masked(url))
    for password in {parts[1], urllib.parse.unquote(parts[1])}:
        text = text.replace(f":{password}@", ":***@")
    return text


def _is_postgresql(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (any driver)."""
    return url.partition(":")[0].partition("+")[0] in ("postgresql", "postgres")


def _lock_key(name: str) -> int:
    """The 64-bit key of the PostgreSQL advisory lock ``name`` (the same on every machine)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def advisory_lock(url: str, name: str):
    """In a ``with`` block: PostgreSQL's advisory lock ``name``, waited for, on a connection of its
    own. A transaction holds it, so it ends with the block, or when the process dies."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": _lock_key(name)})
            yield
    finally:
        engine.dispose()


def open_study(settings: dict, sweep: dict, folder: Path) -> tuple:
    """(study, storage): the sweep's study, created on first use, in ``settings["storage"]``.

    The storage records heartbeats (``heartbeat_seconds``, ``grace_seconds``). On PostgreSQL,
    Optuna's tables and the study are created under PG_SCHEMA_LOCK: two machines that start on an
    empty database at once would otherwise both create them, and one would fail. Raises
    OptimusError, one line, when the storage cannot be opened.
    """
    url = storage_url(settings, folder)
    engine = {"connect_args": {"timeout": SQLITE_TIMEOUT}} if url.startswith("sqlite") else {}
    try:
        with advisory_lock(url, PG_SCHEMA_LOCK) if _is_postgresql(url) else contextlib.nullcontext():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url, engine_kwargs=engine, heartbeat_interval=settings["heartbeat_seconds"],
                    grace_period=settings["grace_seconds"])
            study = optuna.create_study(storage=storage, study_name=sweep["name"],
                                        direction="maximize", load_if_exists=True)
            if not study.get_trials(deepcopy=False):
                import_finished(study, folder / CSV_FILE)
    except (ImportError, ValueError, sqlalchemy.exc.SQLAlchemyError,
            optuna.exceptions.OptunaError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise utils.OptimusError(f"--storage={masked(url)}: cannot open the study "
                                 f"({_hide_password(first, url)})") from None
    return study, storage


TEXT_COLUMNS = ("configuration", "run_dir", "overrides", "invocation", "error")
INTEGER_COLUMNS = ("seed", "first_learned", "batches")


def import_finished(study: optuna.Study, path: Path) -> int:
    """Add the COMPLETE trials of a committed ``trials.csv`` to a new, empty study: a sweep goes on
    from its committed results on a fresh machine. Returns how many it added."""
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        rows = [row for row in csv.DictReader(f) if row.get("state") == "COMPLETE"]
    for row in rows:
        attributes = {}
        for column in CSV_COLUMNS[2:]:  # a complete trial has each but "error"; "" was None
            text = row.get(column, "")
            if column in ("value", "error"):
                continue
            attributes[column] = (text if column in TEXT_COLUMNS else None if text == ""
                                  else json.loads(text) if column == "scores"
                                  else int(text) if column in INTEGER_COLUMNS else float(text))
        study.add_trial(optuna.trial.create_trial(value=float(row["value"]), user_attrs=attributes))
    return len(rows)


class ClaimLock:
    """The lock that workers take turns under to claim a grid point: on PostgreSQL the study's
    advisory lock, which serves the workers of every machine; else a flock on CLAIM_LOCK in the
    sweep folder, which serves this machine's (enough for SQLite, whose file is on it)."""

    def __init__(self, url: str, folder: Path, study_name: str):
        self.url, self.path, self.name = url, folder / CLAIM_LOCK, PG_CLAIM_LOCK + study_name

    @contextlib.contextmanager
    def held(self):
        """In a ``with`` block: the lock, waited for."""
        if _is_postgresql(self.url):
            with advisory_lock(self.url, self.name):
                yield
            return
        with open(self.path, "a") as file:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(file.fileno(), fcntl.LOCK_UN)


def check_unchanged(study: optuna.Study, sweep: dict) -> None:
    """Refuse a configuration whose trials ran with other constants than the file now gives."""
    for trial in study.get_trials(deepcopy=False):
        name = trial.user_attrs.get("configuration")
        if name in sweep["configurations"]:
            now = " ".join(sweep["configurations"][name])
            then = trial.user_attrs.get("overrides")
            if then != now:
                raise utils.OptimusError(
                    f"{sweep['path']}: configuration {name!r} is now {now or 'the defaults'!r}, but "
                    f"trial {trial.number} ran it as {then or 'the defaults'!r}; give the changed "
                    "configuration a new name")


def _point(trial) -> tuple:
    """A trial's (configuration, seed)."""
    return trial.user_attrs.get("configuration"), trial.user_attrs.get("seed")


def next_point(trials: list, sweep: dict, invocation: str) -> tuple | None:
    """The first selected grid point to start: none of its trials is waiting, running or complete,
    and none failed with an error in this invocation (a re-run retries those)."""
    taken = {_point(t) for t in trials
             if t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)
             or (t.state == TrialState.FAIL and "error" in t.user_attrs
                 and t.user_attrs.get("invocation") == invocation)}
    return next((p for p in grid(sweep) if p not in taken), None)


def holder(trials: list, number: int, point: tuple) -> int | None:
    """The lower-numbered trial that already holds ``point`` (waiting, running or complete), if any.

    Workers that share the claim lock never claim a point twice; workers on several machines
    without one (a database other than PostgreSQL) can, in the same instant, and then only the
    lowest-numbered trial of the point runs.
    """
    return next((t.number for t in trials if t.number < number and _point(t) == point
                 and t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)), None)


def claim(study: optuna.Study, storage, sweep: dict, invocation: str, lock: ClaimLock):
    """Start the next trial under the claim lock: a waiting one, else the next grid point.

    Fails the running trials whose heartbeat lapsed first. Returns the running Trial, or None
    when no grid point is left to start. Its heartbeat is recorded before it runs: Optuna never
    declares a running trial without one dead, so a worker killed in between would leave it
    running for ever.
    """
    # Optuna takes a waiting trial by reading its state, then writing RUNNING; in SQLite two
    # processes can both read it waiting, and both run it; and two workers can both find the same
    # next grid point. Workers therefore take turns.
    with lock.held():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        if not any(t.state == TrialState.WAITING for t in trials):
            point = next_point(trials, sweep, invocation)
            if point is None:
                return None
            # created whole, with its grid point, so that every worker sees which point it is
            study.enqueue_trial({}, user_attrs={
                "configuration": point[0], "seed": point[1], "invocation": invocation,
                "overrides": " ".join(sweep["configurations"][point[0]]),
                "run_dir": str(run_folder(Path(), point))})
        for waiting in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            storage.record_heartbeat(_trial_id(storage, study, waiting.number))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used")
            return study.ask()  # takes the lowest-numbered waiting trial: RUNNING now


def _trial_id(storage, study: optuna.Study, number: int) -> int:
    """The storage's id of trial ``number``, which its heartbeat is recorded under."""
    return storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(study.study_name), number)


class Heartbeat:
    """In a ``with`` block: a thread recording the trial's heartbeat every ``seconds``."""

    def __init__(self, storage, trial_id: int, seconds: int):
        self.storage, self.trial_id, self.seconds = storage, trial_id, seconds
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.seconds):
            self.storage.record_heartbeat(self.trial_id)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join()


# ---------------------------------------------------------------------------------------------
# One trial


def _wait_for_folder(directory: Path, seconds: int, label: str) -> None:
    """Wait while another process trains in ``directory`` (a trial declared dead, yet alive)."""
    told = False
    while True:
        try:
            os.close(checkpoint.lock(directory))
            return
        except utils.OptimusError:
            if not told:
                print(f"{label}: waiting for {directory}, where an earlier attempt still trains",
                      flush=True)
                told = True
            time.sleep(seconds)


class _Progress(io.TextIOBase):
    """A trial's stdout: all of it to its log file, and one line on the sweep's own output for
    each test session, so that a long trial shows how it goes."""

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
                      f"{session['beyond']}, in range {session['in_range']}", file=self.out,
                      flush=True)
        return len(text)

    def flush(self) -> None:
        self.log.flush()


def train_and_score(sweep: dict, point: tuple, folder: Path, settings: dict, label: str) -> tuple:
    """Train (or resume) a grid point's run to its nb_batches; (held-out score, user attributes).

    The attributes are those of RESULTS and "scores", the held-out score of every test session
    as [batch, score]. Raises _Stopped when Ctrl-C stopped the training early.
    """
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
        "first_learned": next((t["batch"] for t in state["tests"] if t["beyond"]["score"] >= LEARNED_SCORE),
                              None),
        "seconds": round(seconds, 3), "seconds_per_batch": round(seconds / len(state["history"]), 4),
        "batches": last["batch"],
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


def _label(trial, point: tuple) -> str:
    return f"trial {trial.number} ({point[0]}, seed {point[1]})"


def run_trial(study: optuna.Study, storage, trial, sweep: dict, settings: dict, folder: Path) -> None:
    """Run a claimed trial to its end and print its line; rewrites the outputs when it completes."""
    point = _point(trial)
    if point not in grid(sweep, list(sweep["configurations"])):
        # ask made an empty trial, as another machine's worker took the waiting one first; or a
        # worker that died while claiming left one for a point the sweep file no longer has
        _finish(study, trial, {}, state=TrialState.PRUNED)
        return
    label = _label(trial, point)
    first = holder(study.get_trials(deepcopy=False), trial.number, point)
    if first is not None:  # another machine's worker claimed the same point in the same instant
        _finish(study, trial, {}, state=TrialState.PRUNED)
        print(f"{label}: trial {first} holds this grid point; skipped", flush=True)
        return
    with Heartbeat(storage, _trial_id(storage, study, trial.number), settings["heartbeat_seconds"]):
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
        print(f"{label} ended after its heartbeat had lapsed; another trial holds its grid point",
              flush=True)
        return
    done = completed(study.get_trials(deepcopy=False), sweep)
    print(f"[{sum(p in done for p in grid(sweep))}/{len(grid(sweep))}] {label}: held-out score "
          f"{value:.3f}, in range {attributes['in_range_score']:.3f}, distinct "
          f"{attributes['distinct_fraction']:.2%}, p {measuring.p_value_text(attributes['p_value'])}, "
          f"{attributes['seconds']:.1f} s training", flush=True)
    write_outputs(study, sweep, folder)


def work(study: optuna.Study, storage, sweep: dict, settings: dict, folder: Path,
         invocation: str) -> None:
    """One worker: start trials until no grid point is left, then wait for the running ones.

    Returns when every selected point has no waiting or running trial. Raises _Stopped or
    KeyboardInterrupt on Ctrl-C, after failing the trial in progress.
    """
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
    return [t for t in trials if t.state == TrialState.RUNNING and _point(t) in points]


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
# Outputs


def completed(trials: list, sweep: dict) -> dict:
    """{grid point: its complete trial} over every configuration of the file (the lowest-numbered
    complete trial of a point, should a race between machines have given it two)."""
    points = set(grid(sweep, list(sweep["configurations"])))
    done = {}
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state == TrialState.COMPLETE and _point(trial) in points:
            done.setdefault(_point(trial), trial)
    return done


def mean_ci(values: list) -> tuple:
    """(mean, half-width of the CONFIDENCE interval by Student's t; None for one value), over the
    values that are not None ((None, None) if none is)."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, None
    t = stats.t.ppf((1 + CONFIDENCE) / 2, len(values) - 1)
    return mean, float(t * np.std(values, ddof=1) / math.sqrt(len(values)))


def summarize(trials: list, sweep: dict) -> list:
    """Per configuration of the file with a complete trial, in file order: its name, the number of
    complete seeds, (mean, CI half-width) of each of MEANS, and the largest p_value."""
    done = completed(trials, sweep)
    rows = []
    for name in sweep["configurations"]:
        runs = [done[(name, seed)] for seed in sweep["seeds"] if (name, seed) in done]
        if runs:
            rows.append({"configuration": name, "seeds": len(runs), "values": [t.value for t in runs],
                         "value": mean_ci([t.value for t in runs]),
                         # .get: trials of an older sweep.py lack the later attributes
                         **{key: mean_ci([t.user_attrs.get(key) for t in runs]) for key in MEANS[1:]},
                         "learned": sum(t.user_attrs.get("first_learned") is not None for t in runs),
                         "p_value": max(t.user_attrs["p_value"] for t in runs)})
    return rows


def difference(values: list, reference: list) -> tuple:
    """(mean of ``values`` minus that of ``reference``, half-width of its CONFIDENCE interval by
    Welch's t, or None with fewer than 2 of either, and what the interval says in words)."""
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


def format_table(rows: list, sweep: dict) -> str:
    """The markdown tables of ``summarize``'s rows (the generator's outputs, then the
    discriminator), with what they show and the command that made them."""
    command = f"python training/sweep.py {_shown_path(sweep['path'])}"
    lines = [f"Held-out score: distinct primes among the outputs for latents beyond the training "
             f"range, over chance's count at the same magnitudes (a uniform odd sampler scores 1); "
             f"in-range score: the same on the training range. Mean +- {CONFIDENCE:.0%} confidence "
             "interval (Student t) over seeds; p-value: the largest over seeds; multiples: the "
             f"shares of held-out outputs divisible by 3, 5 and 7 (chance: 33, 20 and 14%); against the "
             f"first row ({rows[0]['configuration'] if rows else 'none'}): the held-out score's difference, with its {CONFIDENCE:.0%} interval (Welch t), and whether that "
             "interval is above zero (higher), below it (lower) or holds it (no measurable effect).", "",
             "| configuration | seeds | held-out score | against the first row | in-range score | "
             "distinct outputs | p-value | multiples of 3 / 5 / 7 | training seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        seeds = str(row["seeds"]) + ("" if row["seeds"] == len(sweep["seeds"]) else
                                     f" of {len(sweep['seeds'])}")
        multiples = " / ".join(f"{100 * row[f'multiples_{q}'][0]:.1f}" for q in measuring.SMALL_PRIMES)
        lines.append(f"| {row['configuration']} | {seeds} | {cell(row['value'], '.3f')} | "
                     f"{_against(row, rows[0])} | {cell(row['in_range_score'], '.3f')} | {cell(_percent(row['distinct_fraction']), '.2f', '%')} | "
                     f"{measuring.p_value_text(row['p_value'])} | {multiples}% | "
                     f"{cell(row['seconds'], '.1f')} |")
    lines += ["", "The discriminator at the end, on uniform odd candidates at the held-out outputs' "
              "magnitudes, half of them prime (the balance it trained on; a constant scores 50% and "
              f"log-loss 0.693); probe: a linear probe of its last hidden layer for \"a multiple of "
              f"p\", held out (50%: nothing to read); learned: the first test session's batch with a "
              f"held-out score of at least {LEARNED_SCORE} (mean over the seeds that got there):", "",
              "| configuration | balanced accuracy | log-loss | probe " + " / ".join(map(str, measuring.PROBE_PRIMES))
              + " | learned at batch | seconds per batch |", "|---|---|---|---|---|---|"]
    for row in rows:
        probes = " / ".join("n/a" if row[k][0] is None else f"{100 * row[k][0]:.0f}" for k in PROBES)
        learned = ("never" if not row["learned"] else
                   f"{row['first_learned'][0]:.0f} ({row['learned']} of {row['seeds']})")
        lines.append(f"| {row['configuration']} | {cell(_percent(row['discriminator_accuracy']), '.1f', '%')} | "
                     f"{cell(row['discriminator_log_loss'], '.3f')} | {probes}% | {learned} | "
                     f"{cell(row['seconds_per_batch'], '.2f')} |")
    lines += ["", "The held-out primes' distribution, against uniform over every prime in the windows of "
              "the held-out latents (a uniform sampler: tv 0, 0 bits, coverage 1; its residue tv is "
              "the noise floor, about 0.016 on 10,000 windows); kept: the share of latents the "
              "sampler kept:", "",
              "| configuration | kept | tv | entropy deficit (bits) | residue tv | coverage |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {row['configuration']} | {cell(_percent(row['acceptance_rate']), '.1f', '%')} | "
              f"{cell(row['tv'], '.3f')} | {cell(row['entropy_deficit_bits'], '.3f')} | "
              f"{cell(row['residue_tv'], '.4f')} | {cell(row['coverage'], '.3f')} |" for row in rows]
    return "\n".join(lines + ["", f"Made by `{command}`."]) + "\n"


def _shown_path(path: str) -> str:
    """A sweep file's path relative to the repository when it is inside it."""
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return path


def plot_scores(trials: list, sweep: dict) -> bytes:
    """PNG of the held-out score over batches: per configuration the mean over its complete seeds
    and a band from the lowest to the highest seed, drawn headless."""
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
    return train.png_bytes(fig)


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


def _join(processes: list) -> None:
    """Wait for the worker processes; a Ctrl-C meanwhile reached them too, so keep waiting."""
    for process in processes:
        while process.is_alive():
            try:
                process.join()
            except KeyboardInterrupt:
                pass


def _run_workers(study: optuna.Study, storage, sweep: dict, settings: dict, folder: Path,
                 count: int) -> tuple:
    """This process and count - 1 spawned ones work the grid until it is done or Ctrl-C stops them:
    (whether this process was stopped, the other workers' processes, ended)."""
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
    _join(processes)
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
    left = len(points) - sum(p in completed(trials, sweep) for p in points)
    count = max(1, min(settings["workers"], left))  # no more workers than trials to run
    print(f"Sweep {sweep['name']}: {len(sweep['selected'])} configuration(s) x {len(sweep['seeds'])} "
          f"seed(s), {len(points) - left} of {len(points)} trials done before; {count} worker(s); "
          f"runs in {folder / RUNS}; study in {masked(storage_url(settings, folder))}", flush=True)
    if running(trials, sweep):
        print(f"{len(running(trials, sweep))} trial(s) were running already: any whose worker is gone "
              f"runs again once its heartbeat has lapsed for {settings['grace_seconds']} s", flush=True)
    stopped, processes = _run_workers(study, storage, sweep, settings, folder, count)
    table = write_outputs(study, sweep, folder)
    print(f"\n{table}\nOutputs: {folder / CSV_FILE}, {folder / TABLE_FILE}, {folder / PLOT_FILE}",
          flush=True)
    if stopped or any(p.exitcode == 130 for p in processes):
        print("Stopped by Ctrl-C; run the same command to go on.", file=sys.stderr, flush=True)
        return 130
    missing = [p for p in points if p not in completed(study.get_trials(deepcopy=False), sweep)]
    if missing:
        print(f"error: {len(missing)} of {len(points)} trials did not complete (see the lines above); "
              "run the same command to retry them", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
