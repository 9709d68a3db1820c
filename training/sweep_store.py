"""Where a sweep's trials live and how workers share them: an Optuna study on SQLite (one machine)
or PostgreSQL (many), claims of grid points under a lock, heartbeats of running trials, and the
import of a committed trials.csv into a fresh study."""
import contextlib
import csv
import fcntl
import hashlib
import json
import threading
import urllib.parse
import warnings
from pathlib import Path

import optuna
import sqlalchemy  # Optuna's database layer
import sqlalchemy.exc
import sqlalchemy.pool
from optuna.trial import TrialState

import utils
from training.sweep_results import CSV_COLUMNS, CSV_FILE, grid, point_of, run_folder

STUDY_FILE = "study.db"         # the default storage, in the sweep folder
SQLITE_TIMEOUT = 60             # seconds a worker waits for another's write to the SQLite file
CLAIM_LOCK = "claim.lock"       # held while a local worker picks and claims a grid point (not
                                # PostgreSQL: there an advisory lock serves every machine)
PG_SCHEMA_LOCK = "optimus sweep: schema"  # PostgreSQL advisory lock while Optuna creates its tables
PG_CLAIM_LOCK = "optimus sweep: claim "   # ... and, with the study's name, while a worker claims
TEXT_COLUMNS = ("configuration", "run_dir", "overrides", "invocation", "error")  # of trials.csv
INTEGER_COLUMNS = ("seed", "first_learned", "batches")
HOLDING = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)  # a trial in these holds its point


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
    """A database's error message with ``url`` masked, and its password where the message quotes
    ``name:password@``, as written or percent-decoded."""
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


@contextlib.contextmanager
def advisory_lock(url: str, name: str):
    """In a ``with`` block: PostgreSQL's advisory lock ``name``, waited for, on a connection of its
    own. A transaction holds it, so it ends with the block, or when the process dies."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)  # same everywhere
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            yield
    finally:
        engine.dispose()


def open_study(settings: dict, sweep: dict, folder: Path) -> tuple:
    """(study, storage): the sweep's study, created on first use, with heartbeats; OptimusError, one
    line, when it cannot be opened. On PostgreSQL the tables and study are created under
    PG_SCHEMA_LOCK: two machines starting on an empty database would both create them, one failing."""
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


def import_finished(study: optuna.Study, path: Path) -> int:
    """Add the COMPLETE trials of a committed ``trials.csv`` to a new, empty study, so that a sweep
    goes on from its committed results on a fresh machine. Returns how many it added."""
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        rows = [row for row in csv.DictReader(f) if row.get("state") == "COMPLETE"]
    for row in rows:
        attributes = {}
        for column in CSV_COLUMNS[2:]:  # a complete trial has each but "error"; "" was None
            text = row.get(column)
            if column not in ("value", "error") and text is not None:  # None: an older sweep.py's CSV
                attributes[column] = (text if column in TEXT_COLUMNS else None if text == ""
                                      else json.loads(text) if column == "scores"
                                      else int(text) if column in INTEGER_COLUMNS else float(text))
        study.add_trial(optuna.trial.create_trial(value=float(row["value"]), user_attrs=attributes))
    return len(rows)


class ClaimLock:
    """The lock workers take turns under to claim a grid point: on PostgreSQL the study's advisory
    lock, for every machine; else a flock on CLAIM_LOCK in the sweep folder, for this machine's
    (enough for SQLite, whose file is on it)."""

    def __init__(self, url: str, folder: Path, study_name: str):
        self.url, self.path, self.name = url, folder / CLAIM_LOCK, PG_CLAIM_LOCK + study_name

    @contextlib.contextmanager
    def held(self):
        """In a ``with`` block: the lock, waited for."""
        if _is_postgresql(self.url):
            with advisory_lock(self.url, self.name):
                yield
            return
        with open(self.path, "a") as file:  # closing it releases the flock
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            yield


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


def next_point(trials: list, sweep: dict, invocation: str) -> tuple | None:
    """The first selected grid point to start: none of its trials is waiting, running or complete,
    and none failed with an error in this invocation (a re-run retries those)."""
    failed_now = {point_of(t) for t in trials if t.state == TrialState.FAIL and "error" in t.user_attrs
                  and t.user_attrs.get("invocation") == invocation}
    taken = {point_of(t) for t in trials if t.state in HOLDING} | failed_now
    return next((p for p in grid(sweep) if p not in taken), None)


def holder(trials: list, number: int, point: tuple) -> int | None:
    """The lower-numbered trial that already holds ``point``, if any: machines without a shared claim
    lock (not PostgreSQL) can claim a point in the same instant, and only its first trial runs."""
    return next((t.number for t in trials
                 if t.number < number and point_of(t) == point and t.state in HOLDING), None)


def claim(study: optuna.Study, storage, sweep: dict, invocation: str, lock: ClaimLock):
    """Start the next trial under the claim lock, after failing those whose heartbeat lapsed: a
    waiting one, else the next grid point; None when no point is left. Its heartbeat is recorded
    before it runs: Optuna never declares a trial without one dead, so a worker killed in between
    would leave it running for ever."""
    # Workers take turns: two could find the same next point, and Optuna takes a waiting trial by
    # reading its state, then writing RUNNING, so in SQLite two processes could both run it.
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
            storage.record_heartbeat(trial_id(storage, study, waiting.number))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used")
            return study.ask()  # takes the lowest-numbered waiting trial: RUNNING now


def trial_id(storage, study: optuna.Study, number: int) -> int:
    """The storage's id of trial ``number``, which its heartbeat is recorded under."""
    return storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(study.study_name), number)


@contextlib.contextmanager
def heartbeat(storage, trial_id: int, seconds: int):
    """In a ``with`` block: a thread recording the trial's heartbeat every ``seconds``."""
    stop = threading.Event()

    def beat():
        while not stop.wait(seconds):
            storage.record_heartbeat(trial_id)
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
