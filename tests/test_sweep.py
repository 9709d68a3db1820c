"""training/sweep.py: every grid point completes exactly once, a killed sweep resumes, bad input is
one line, and the table agrees with the CSV.

The sweep runs as real commands on a tiny grid (2 configurations x 2 seeds, a few small batches).
Each command pays seconds of TensorFlow import per worker, so there are two: one worker killed
midway, then two workers that finish the grid; several tests read that one history.

On a real PostgreSQL server (started here, or OPTIMUS_TEST_POSTGRES_URL's), three commands with
their own sweep folders, as three machines without a shared filesystem, start at once on an empty
database; one is killed midway, and the others finish the grid. Without initdb, pg_ctl or
psycopg those tests are skipped, except in CI (CI=true), where they fail.
"""
import contextlib
import csv
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from training import rules
from support import error_line, own_lines
from training import sweep, sweep_results, sweep_store, train

ROOT = Path(__file__).resolve().parents[1]
SWEEP_SCRIPT = ROOT / "training" / "sweep.py"
NB_BATCHES = 6                  # per run: batch 1 traces the networks (seconds), the rest are quick
SESSIONS_EVERY = 3              # a test session at batches 3 and 6: two progress lines per trial
TINY_GRID = f'''"""A tiny grid for the tests."""
SEEDS = (0, 1)
COMMON = {{"nb_batches": {NB_BATCHES}, "batch_size": 200, "steps": 3, "nb_samples": 10,
          "test_samples": 200, "minimum_batch_size": 20, "high_latent": 5000,
          "test_session_occurrences": {SESSIONS_EVERY}}}
CONFIGURATIONS = {{
    "offset head": {{"generator_steps": 1}},
    "seed's method": {{"generator_head": "real", "discriminator": "seed", "discriminator_input": "scalar"}},
}}
'''
POINTS = [(name, seed) for name in ("offset head", "seed's method") for seed in (0, 1)]
FAST_HEARTBEAT = ("--heartbeat_seconds=1", "--grace_seconds=5")
RUN_TIMEOUT = 150               # seconds for a sweep command to end on its own
POLL_SECONDS = 0.02             # between looks at the run folders
PROGRESS_LINE = re.compile(r"^trial (\d+) \((.*), seed (\d+)\): batch (\d+)/(\d+), held-out score "
                           r"(\S+), in range (\S+)$", re.M)


def grid_file(directory: Path) -> Path:
    """Write TINY_GRID to ``directory``/tiny.py; its sweep folder is ``directory``/tiny."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tiny.py"
    path.write_text(TINY_GRID)
    return path


def start(args, log: Path) -> subprocess.Popen:
    """Start sweep.py in its own process group, stdout to ``log`` and stderr to ``log``.err."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    with open(log, "w") as out, open(log.with_suffix(".err"), "w") as err:
        return subprocess.Popen([sys.executable, str(SWEEP_SCRIPT), *map(str, args)], stdout=out,
                                stderr=err, cwd=log.parent, env=env, start_new_session=True)


def finish(proc: subprocess.Popen, log: Path) -> tuple:
    """(exit status, stdout, stderr) once the process has ended."""
    proc.wait(timeout=RUN_TIMEOUT)
    return proc.returncode, log.read_text(), log.with_suffix(".err").read_text()


def study_trials(folder: Path) -> list:
    """Every trial of the tiny grid's study in ``folder``."""
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{folder / sweep_store.STUDY_FILE}")
    return study.get_trials()


def point_of(trial) -> tuple:
    """A trial's (configuration, seed)."""
    return trial.user_attrs["configuration"], trial.user_attrs["seed"]


def batch_of(run: Path) -> int:
    """The batch of a run folder's saved checkpoint (0 before the first)."""
    try:
        return json.loads((run / "state.json").read_text())["batch"]
    except (OSError, ValueError):  # absent, or being replaced at this instant
        return 0


@pytest.fixture(scope="module")
def killed_then_rerun(tmp_path_factory) -> dict:
    """The tiny grid run by one worker, killed with kill -9 once its first run has finished and its
    second is midway, then by the same command again with two workers.

    Returns the sweep folder, the run folders that were midway, and the second command's exit
    status and output.
    """
    directory = tmp_path_factory.mktemp("sweep")
    path, folder = grid_file(directory), directory / "tiny"
    runs = [sweep.run_folder(folder, point) for point in POINTS]
    proc = start([path, *FAST_HEARTBEAT], directory / "first.out")
    deadline = time.monotonic() + RUN_TIMEOUT
    while not (any(batch_of(r) == NB_BATCHES for r in runs)
               and any(0 < batch_of(r) < NB_BATCHES for r in runs)):
        assert proc.poll() is None and time.monotonic() < deadline, finish(proc, directory / "first.out")
        time.sleep(POLL_SECONDS)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    midway = [r for r in runs if 0 < batch_of(r) < NB_BATCHES]
    again = start([path, "--workers=2", *FAST_HEARTBEAT], directory / "again.out")
    status, out, err = finish(again, directory / "again.out")
    return {"folder": folder, "runs": runs, "midway": midway, "status": status, "out": out, "err": err,
            "first_out": (directory / "first.out").read_text()}


@pytest.mark.slow
def test_two_workers_complete_every_grid_point_exactly_once(killed_then_rerun):
    result = killed_then_rerun
    assert result["status"] == 0 and not own_lines(result["err"]), result["out"] + result["err"]
    trials = study_trials(result["folder"])
    complete = sorted(point_of(t) for t in trials if t.state == TrialState.COMPLETE)
    assert complete == sorted(POINTS), [(t.number, t.state, t.user_attrs) for t in trials]
    # besides one complete trial per point, only the killed one: nothing waits, runs or was skipped
    assert len(trials) == len(POINTS) + 1 and [t.state for t in trials].count(TrialState.FAIL) == 1
    assert len(re.findall(r"^\[\d/4\] trial \d+ \(", result["out"], re.M)) == 3  # a line per trial
    for name in (sweep.CSV_FILE, sweep.TABLE_FILE, sweep.PLOT_FILE):
        assert (result["folder"] / name).stat().st_size > 0
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            assert trial.value == trial.user_attrs["scores"][-1][1]  # the last held-out score
            assert set(sweep_results.RESULTS) <= set(trial.user_attrs)


@pytest.mark.slow
def test_a_killed_trial_runs_again_and_its_run_resumes(killed_then_rerun):
    result = killed_then_rerun
    assert result["midway"] and "1 trial(s) were running already" in result["out"]
    for run in result["runs"]:
        history = [row["batch"] for row in json.loads((run / "state.json").read_text())["history"]]
        assert history == list(range(1, NB_BATCHES + 1))  # no batch twice, none lost
    for run in result["midway"]:
        log = (run / sweep.LOG_FILE).read_text()
        resumed = re.findall(r"^Resuming from .* at batch (\d+)$", log, re.M)
        assert resumed and int(resumed[-1]) > 0  # it went on from its checkpoint, not from scratch


@pytest.mark.slow
def test_re_running_skips_finished_trials(killed_then_rerun):
    result = killed_then_rerun
    assert "1 of 4 trials done before" in result["out"]
    finished_first = result["runs"][0]
    assert (finished_first / sweep.LOG_FILE).read_text().count("--- trial") == 1  # one attempt


@pytest.mark.slow
def test_table_means_match_the_csv(killed_then_rerun):
    folder = killed_then_rerun["folder"]
    with open(folder / sweep.CSV_FILE) as f:
        rows = [r for r in csv.DictReader(f) if r["state"] == "COMPLETE"]
    table = (folder / sweep.TABLE_FILE).read_text()
    # CSV column, scale in the table, the table's last digit (None: not a mean)
    columns = (("value", 1, 1e-3), ("against the first row", None, None), ("in_range_score", 1, 1e-3), ("distinct_fraction", 100, 1e-2),
               ("p_value", None, None), ("multiples_3", 100, 1e-1), ("seconds", 1, 1e-1))
    for name in ("offset head", "seed's method"):
        cells = re.search(rf"^\| {re.escape(name)} \| 2 \|(.*)\|$", table, re.M).group(1).split("|")
        for (column, scale, digit), cell in zip(columns, cells):
            if scale is None:
                continue
            mean = scale * np.mean([float(r[column]) for r in rows if r["configuration"] == name])
            assert abs(float(cell.split()[0].rstrip("%")) - mean) <= digit / 2 + 1e-9, (column, cell)
        judged = re.search(rf"^\| {re.escape(name)} \|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|$",
                           table, re.M)
        for column, scale, digit, cell in (("discriminator_accuracy", 100, 1e-1, judged.group(1)),
                                           ("discriminator_log_loss", 1, 1e-3, judged.group(2)),
                                           ("probe_3", 100, 1, judged.group(3))):
            mean = scale * np.mean([float(r[column]) for r in rows if r["configuration"] == name])
            assert abs(float(cell.split()[0].rstrip("%")) - mean) <= digit / 2 + 1e-9, (column, cell)


@pytest.mark.slow
def test_a_fresh_folder_goes_on_from_the_committed_trials_csv(killed_then_rerun, tmp_path):
    """On a fresh machine only trials.csv is committed: a new study takes its complete trials,
    with the same attributes, and the tables come out the same."""
    folder = killed_then_rerun["folder"]
    shutil.copy(folder / sweep.CSV_FILE, tmp_path / sweep.CSV_FILE)
    loaded = sweep.load_sweep(str(folder.parent / "tiny.py"))
    fresh, _ = sweep.open_study({**sweep.DEFAULTS, "sweep_dir": str(tmp_path)}, loaded, tmp_path)
    old = study_trials(folder)
    assert len(fresh.get_trials()) == sum(t.state == TrialState.COMPLETE for t in old) == len(POINTS)
    done = sweep.completed(old, loaded)
    for trial in fresh.get_trials():
        before = done[point_of(trial)]
        assert (trial.value, trial.user_attrs) == (before.value, before.user_attrs)
    assert sweep_results.format_table(sweep_results.summarize(fresh.get_trials(), loaded), loaded) == \
        sweep_results.format_table(sweep_results.summarize(old, loaded), loaded)
    again, _ = sweep.open_study({**sweep.DEFAULTS, "sweep_dir": str(tmp_path)}, loaded, tmp_path)
    assert len(again.get_trials()) == len(POINTS)  # a study with trials imports nothing more


COMMITTED_SWEEPS = sorted(p.parent.name for p in (ROOT / "training" / "sweeps").glob("*/trials.csv")
                          if "CONFIGURATIONS" in (p.parent.parent / f"{p.parent.name}.py").read_text())


def _table_from(csv_path: Path, name: str, folder: Path) -> str:
    """results.md as the code makes it from a trials.csv, through a fresh study in ``folder``."""
    shutil.copy(csv_path, folder / sweep.CSV_FILE)
    loaded = sweep.load_sweep(str(ROOT / "training" / "sweeps" / f"{name}.py"))
    study, _ = sweep.open_study({**sweep.DEFAULTS, "sweep_dir": str(folder)}, loaded, folder)
    return sweep_results.format_table(sweep_results.summarize(study.get_trials(), loaded), loaded)


@pytest.mark.parametrize("name", COMMITTED_SWEEPS)
def test_each_committed_table_is_what_the_code_makes_of_its_trials(name, tmp_path):
    folder = ROOT / "training" / "sweeps" / name
    made = _table_from(folder / sweep.CSV_FILE, name, tmp_path)
    assert made == (folder / sweep.TABLE_FILE).read_text()


def test_a_changed_trial_changes_the_table(tmp_path):
    """The control: one complete trial's value changed, the methods table differs."""
    rows = list(csv.DictReader(open(ROOT / "training" / "sweeps" / "methods" / sweep.CSV_FILE)))
    done = next(row for row in rows if row["state"] == "COMPLETE")
    done["value"] = str(float(done["value"]) + 0.5)
    edited = tmp_path / "edited.csv"
    with open(edited, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (tmp_path / "study").mkdir()
    table = _table_from(edited, "methods", tmp_path / "study")
    assert table != (ROOT / "training" / "sweeps" / "methods" / sweep.TABLE_FILE).read_text()


@pytest.mark.parametrize("values, reference, word", [
    ([3.0, 3.1, 3.05], [2.0, 2.1, 2.05], "higher"),
    ([2.0, 2.1, 2.05], [3.0, 3.1, 3.05], "lower"),
    ([1.0, 2.0, 3.0], [1.5, 2.5, 3.5], "no measurable effect"),
])
def test_the_difference_from_the_first_row_says_what_its_interval_shows(values, reference, word):
    delta, half, said = sweep_results.difference(values, reference)
    assert said == word and delta == pytest.approx(np.mean(values) - np.mean(reference))
    assert (abs(delta) > half) == (word != "no measurable effect")


@pytest.mark.slow
def test_a_running_trial_prints_one_line_per_test_session(killed_then_rerun):
    result = killed_then_rerun
    output = result["first_out"] + result["out"]
    assert "test session at batch" not in output  # train.py's own lines go to the run's log
    shown = {}
    for number, name, seed, batch, batches, score, in_range in PROGRESS_LINE.findall(output):
        assert int(batches) == NB_BATCHES
        shown.setdefault(int(number), []).append((int(batch), score))
    for trial in study_trials(result["folder"]):
        if trial.state != TrialState.COMPLETE:
            continue
        sessions = [(batch, f"{score:.3f}") for batch, score in trial.user_attrs["scores"]]
        assert len(sessions) == NB_BATCHES // SESSIONS_EVERY
        lines = shown.get(trial.number, [])
        # a resumed trial shows the sessions of its own attempt: the last ones, the final included
        assert lines and lines == sessions[-len(lines):], (trial.number, lines, sessions)
        run = sweep.run_folder(result["folder"], point_of(trial))
        if run not in result["midway"]:
            assert lines == sessions
        assert f"test session at batch {NB_BATCHES}: " in (run / sweep.LOG_FILE).read_text()


BAD_INPUT = {
    "unknown constant": ({"offset head": {"stepz": 3}}, [], ["'offset head'", "stepz", "steps"]),
    "bad value": ({"offset head": {"steps": 0}}, [], ["'offset head'", "steps", ">= 1"]),
    "constant the sweep sets": ({"offset head": {"seed": 3}}, [], ["'offset head'", "seed", "SEEDS"]),
    "bad override": ({}, ["--workers=0"], ["--workers=0", "workers", ">= 1"]),
    "unknown override": ({}, ["--worker=2"], ["--worker=2", "workers"]),
    "unknown --only": ({}, ["--only=default"], ["--only=default", "'offset head'"]),
    "grace within a heartbeat": ({}, ["--grace_seconds=5", "--heartbeat_seconds=5"], ["grace_seconds"]),
    "text for a number": ({"offset head": {"lr": "0.1"}}, [], ["'offset head'", "lr must be",
                                                               "str '0.1'"]),
    "text for an integer": ({"offset head": {"steps": "3"}}, [], ["'offset head'", "steps", "str '3'"]),
    "a bool for an integer": ({"offset head": {"steps": True}}, [], ["steps", "bool True"]),
    "a number for a text": ({"offset head": {"generator_head": 1}}, [], ["generator_head", "int 1"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_configuration_or_override_is_one_line_and_exit_2(case, tmp_path, capsys):
    configurations, argv, fragments = BAD_INPUT[case]
    path = grid_file(tmp_path)
    if configurations:
        path.write_text(TINY_GRID + f"CONFIGURATIONS = {configurations!r}\n")
    assert sweep.main([str(path), *argv]) == 2
    out, err = capsys.readouterr()
    line = error_line(err)
    for fragment in fragments:
        assert fragment in line, line
    assert out == "" and not (tmp_path / "tiny").exists()  # refused before any trial or folder


def test_a_missing_sweep_file_is_one_line_and_exit_2(tmp_path, capsys):
    assert sweep.main([str(tmp_path / "none.py")]) == 2
    assert "no such sweep file" in error_line(capsys.readouterr().err)


def test_an_int_may_stand_for_a_float(tmp_path):
    path = grid_file(tmp_path)
    path.write_text(TINY_GRID + 'CONFIGURATIONS = {"offset head": {"lambda_": 2}}\n')
    assert sweep.load_sweep(str(path))["configurations"]["offset head"][-1] == "--lambda_=2"


SWEEP_FILE_EXITS = {
    "SystemExit(0)": "raise SystemExit(0)",
    "sys.exit with a text": "import sys\nsys.exit('done')",
    "a BaseException": "raise BaseException('odd')",
}


@pytest.mark.parametrize("case", list(SWEEP_FILE_EXITS))
def test_a_sweep_file_that_exits_is_one_line_and_exit_2(case, tmp_path, capsys):
    path = grid_file(tmp_path)
    path.write_text(TINY_GRID + SWEEP_FILE_EXITS[case] + "\n")
    assert sweep.main([str(path)]) == 2
    out, err = capsys.readouterr()
    assert "cannot run the sweep file" in error_line(err) and out == ""
    assert not (tmp_path / "tiny").exists()


def test_ctrl_c_while_a_sweep_file_loads_is_not_its_error(tmp_path):
    path = grid_file(tmp_path)
    path.write_text(TINY_GRID + "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        sweep.load_sweep(str(path))


def test_a_seed_train_refuses_is_refused_before_any_trial(tmp_path, capsys, monkeypatch):
    # Keras refuses seeds >= 2**32; train.py bounds its seed so (the rule set here), and the sweep
    # file's check follows train.py's rule, whatever it is
    monkeypatch.setitem(train.RULES, "seed", rules.between(0, 2**32 - 1, "an integer"))
    path = grid_file(tmp_path)
    path.write_text(TINY_GRID + f"SEEDS = (0, {2**32})\n")
    assert sweep.main([str(path)]) == 2
    out, err = capsys.readouterr()
    line = error_line(err)
    assert "seed" in line and str(2**32) in line and out == ""
    assert not (tmp_path / "tiny").exists()  # no folder, no study: no trial left running


def test_help_lists_every_constant_with_its_default_and_meaning(capsys):
    assert sweep.main(["--help"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: python training/sweep.py SWEEP_FILE") and err == ""
    docs = rules.constant_docs(sweep.__file__)
    assert set(docs) == set(sweep.DEFAULTS) and all(docs.values())
    flat = " ".join(out.split())
    for name, default in sweep.DEFAULTS.items():
        assert f"--{name} = {default!r} {' '.join(docs[name].split())}" in flat, name


MASKED = {
    "postgresql+psycopg://user:secret@host/db": "postgresql+psycopg://user:***@host/db",
    "postgresql://me:p@ss/w:rd@db.example:5432/optimus?sslmode=require":
        "postgresql://me:***@db.example:5432/optimus?sslmode=require",
    "postgresql+psycopg://user@127.0.0.1:5432/db": "postgresql+psycopg://user@127.0.0.1:5432/db",
    "sqlite:////tmp/sweep/study.db": "sqlite:////tmp/sweep/study.db",
}


@pytest.mark.parametrize("url", list(MASKED))
def test_a_storage_url_is_shown_without_its_password(url):
    assert sweep.masked(url) == MASKED[url]


@pytest.mark.parametrize("url", ["postgresql+psycopg://user:s3cret@127.0.0.1:1/db",
                                 "postgresql+psycopg://user:s3cret@127.0.0.1:port/db",
                                 "nodatabase://user:s3cret@127.0.0.1/db"])
def test_a_storage_that_cannot_open_is_one_line_without_the_password(url, tmp_path, capsys):
    assert sweep.main([str(grid_file(tmp_path)), f"--storage={url}"]) == 2
    line = error_line(capsys.readouterr().err)
    assert f"--storage={sweep.masked(url)}: cannot open the study" in line
    assert "s3cret" not in line and "user:***@" in line


def test_only_the_lowest_numbered_trial_of_a_point_runs():
    states = (TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING, TrialState.RUNNING)
    seeds = (0, 0, 0, 1)
    trials = []
    for number, (state, seed) in enumerate(zip(states, seeds)):
        trials.append(optuna.trial.create_trial(state=state, user_attrs={"configuration": "default",
                                                                         "seed": seed}))
        trials[-1].number = number
    assert sweep.holder(trials, 1, ("default", 0)) is None  # a failed trial holds nothing
    assert sweep.holder(trials, 2, ("default", 0)) == 1     # two claims at once: the first runs
    assert sweep.holder(trials, 3, ("default", 1)) is None


# ---------------------------------------------------------------------------------------------
# On a real PostgreSQL server, as machines without a shared filesystem

POSTGRES_URL_VARIABLE = "OPTIMUS_TEST_POSTGRES_URL"  # a running server to use instead of starting one
POSTGRES_USER = "optimus"       # the superuser of the server started here
POSTGRES_PASSWORD = "sweep-secret"  # in the URLs given to sweep.py (trust ignores it): never shown
POSTGRES_RUN_AS = "postgres"    # the account that runs the server when the tests run as root
MACHINES = 3                    # sweep commands started at once, each with its own --sweep_dir
ONLY = "offset head"            # their grid: this configuration's seeds (one trial each, then a rerun)
RACERS = 4                      # threads that open the study, or claim, in the same instant


def _in_ci() -> bool:
    """Whether CI runs the tests (CI=true), where a PostgreSQL test may not be skipped."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str):
    """Skip the PostgreSQL tests for ``reason``, or fail them in CI."""
    if _in_ci():
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason}")


def _binary(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, else in Debian's /usr/lib/postgresql/<version>/bin."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(re.search(r"/(\d+)/bin/", p).group(1)))
    return shutil.which(name) or (found[-1] if found else None)


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _throwaway_server():
    """A PostgreSQL server in a temporary folder, on 127.0.0.1 only, its superuser POSTGRES_USER
    trusted; yields its URL (database postgres), then stops it and removes the folder. As root it
    runs as POSTGRES_RUN_AS (the server refuses root). Raises RuntimeError if it cannot start."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError("initdb and pg_ctl not found (Debian: apt-get install postgresql)")
    directory = Path(tempfile.mkdtemp(prefix="optimus-pg-"))  # short: it holds the socket too
    account = {}
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(POSTGRES_RUN_AS)
        except KeyError:
            shutil.rmtree(directory)
            raise RuntimeError(f"running as root, and no {POSTGRES_RUN_AS!r} account to run the "
                               "server as") from None
        os.chown(directory, user.pw_uid, user.pw_gid)
        account = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    data, port = directory / "data", _free_port()
    commands = ([initdb, "-A", "trust", "-U", POSTGRES_USER, "--no-locale", "-E", "UTF8", "-D", data],
                [pg_ctl, "start", "-w", "-t", "60", "-D", data, "-l", directory / "server.log", "-o",
                 f"-p {port} -c listen_addresses=127.0.0.1 -k {directory}"])
    try:
        for command in commands:
            done = subprocess.run(command, cwd=directory, capture_output=True, text=True, **account)
            if done.returncode:
                log = directory / "server.log"
                raise RuntimeError(f"{Path(command[0]).name} failed: {done.stderr.strip()} "
                                   f"{log.read_text() if log.exists() else ''}".strip())
        yield f"postgresql+psycopg://{POSTGRES_USER}:{POSTGRES_PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([pg_ctl, "stop", "-m", "immediate", "-D", data], cwd=directory,
                           capture_output=True, **account)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_server():
    """The URL of a PostgreSQL server whose user may create databases: OPTIMUS_TEST_POSTGRES_URL,
    else a throwaway server started for this module. Skips without one (fails in CI)."""
    try:
        import psycopg  # noqa: F401  (the driver of requirements.txt)
    except ImportError:
        _unavailable("the driver psycopg is not installed (pip install -r requirements.txt)")
    given = os.environ.get(POSTGRES_URL_VARIABLE)
    with contextlib.ExitStack() as stack:
        if given:
            url = given
        else:
            try:
                url = stack.enter_context(_throwaway_server())
            except (RuntimeError, OSError) as err:
                _unavailable(f"cannot start one ({err})")
        engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT",
                                          poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
        except sqlalchemy.exc.SQLAlchemyError as err:
            _unavailable(f"cannot connect to {sweep.masked(url)} ({str(err).splitlines()[0]})")
        created = []
        yield {"url": url, "engine": engine, "created": created}
        if given:  # a server the tests did not start keeps nothing of theirs
            with engine.connect() as connection:
                for name in created:
                    connection.execute(
                        sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def empty_database(server: dict, purpose: str) -> str:
    """The URL of a new, empty database on ``server``, for one test."""
    name = f"optimus_test_{purpose}_{os.getpid()}_{len(server['created'])}"
    with server["engine"].connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    server["created"].append(name)
    return sqlalchemy.engine.make_url(server["url"]).set(database=name).render_as_string(
        hide_password=False)


def postgres_trials(url: str) -> list:
    """Every trial of the tiny grid's study in the database ``url``."""
    return optuna.load_study(study_name="tiny", storage=url).get_trials()


def _at_once(count: int, task) -> list:
    """task(i) for i < count, in threads that start it in the same instant; their results."""
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        return task(i)
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def _settings(url: str) -> dict:
    return {**sweep.DEFAULTS, "storage": url, "heartbeat_seconds": 1, "grace_seconds": 5}


def test_workers_that_open_an_empty_database_at_once_share_one_study(postgres_server, tmp_path):
    url = empty_database(postgres_server, "schema")
    tiny = sweep.load_sweep(str(grid_file(tmp_path)))
    # without a lock, all but one die creating Optuna's tables (UniqueViolation on pg_type)
    studies = _at_once(RACERS, lambda i: sweep.open_study(_settings(url), tiny, tmp_path / f"m{i}")[0])
    ids = {study._study_id for study in studies}
    assert len(ids) == 1 and optuna.study.get_all_study_names(url) == ["tiny"]


def test_workers_without_a_shared_folder_claim_distinct_grid_points(postgres_server, tmp_path):
    url = empty_database(postgres_server, "claim")
    tiny = sweep.load_sweep(str(grid_file(tmp_path)))
    folders = [tmp_path / f"machine{i}" for i in range(RACERS)]
    opened = []
    for folder in folders:  # each its own folder, as on machines that share no filesystem
        folder.mkdir()
        opened.append(sweep.open_study(_settings(url), tiny, folder))

    def claim(i):
        study, storage = opened[i]
        return sweep.claim(study, storage, tiny, f"machine {i}",
                           sweep_store.ClaimLock(url, folders[i], study.study_name))
    claimed = _at_once(RACERS, claim)
    # each took the next point in turn: all distinct, in grid order, and no trial besides
    assert sorted(sweep_results.point_of(t) for t in claimed) == sorted(sweep.grid(tiny)[:RACERS])
    trials = postgres_trials(url)
    assert len(trials) == RACERS and all(t.state == TrialState.RUNNING for t in trials)


@pytest.fixture(scope="module")
def machines_on_postgres(postgres_server, tmp_path_factory) -> dict:
    """MACHINES sweep commands on ONLY's seeds, each with its own --sweep_dir, started at once on an
    empty database; the first seen with a run midway is killed with kill -9, the others finish.

    Returns the database URL, the sweep folders, which machine was killed and at which point,
    and each survivor's exit status and output.
    """
    url = empty_database(postgres_server, "machines")
    directory = tmp_path_factory.mktemp("machines")
    path = grid_file(directory)
    folders = [directory / f"machine{i}" for i in range(MACHINES)]
    logs = [directory / f"machine{i}.out" for i in range(MACHINES)]
    procs = [start([path, f"--only={ONLY}", f"--storage={url}", f"--sweep_dir={folder}",
                    *FAST_HEARTBEAT], log) for folder, log in zip(folders, logs)]
    points = [p for p in POINTS if p[0] == ONLY]
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        midway = [(i, p) for i, folder in enumerate(folders) for p in points
                  if 0 < batch_of(sweep.run_folder(folder, p)) < NB_BATCHES]
        if midway:
            break
        if not (all(p.poll() is None for p in procs) and time.monotonic() < deadline):
            for p in procs:
                os.killpg(p.pid, signal.SIGKILL)
            pytest.fail(f"no run got midway: {[finish(p, log) for p, log in zip(procs, logs)]}")
        time.sleep(POLL_SECONDS)
    killed, point = midway[0]
    os.killpg(procs[killed].pid, signal.SIGKILL)
    procs[killed].wait()
    survivors = {i: finish(p, log) for i, (p, log) in enumerate(zip(procs, logs)) if i != killed}
    return {"url": url, "folders": folders, "points": points, "killed": killed, "point": point,
            "survivors": survivors, "killed_out": logs[killed].read_text()
            + logs[killed].with_suffix(".err").read_text()}


@pytest.mark.slow
def test_machines_started_at_once_on_postgres_complete_each_point_exactly_once(machines_on_postgres):
    result = machines_on_postgres
    for machine, (status, out, err) in result["survivors"].items():
        assert status == 0 and not own_lines(err), f"machine {machine}: status {status}\n{out}{err}"
    trials = postgres_trials(result["url"])
    complete = sorted(point_of(t) for t in trials if t.state == TrialState.COMPLETE)
    assert complete == sorted(result["points"]), [(t.number, t.state, t.user_attrs) for t in trials]
    # besides one complete trial per point, only the killed one: no point was claimed twice
    assert len(trials) == len(result["points"]) + 1
    assert [t.state for t in trials].count(TrialState.FAIL) == 1
    shown = "".join(out + err for _, out, err in result["survivors"].values()) + result["killed_out"]
    password = sqlalchemy.engine.make_url(result["url"]).password
    assert (password is None or password not in shown) and "study in postgresql" in shown


@pytest.mark.slow
def test_a_trial_killed_on_one_machine_runs_again_once_on_another(machines_on_postgres):
    result = machines_on_postgres
    trials = postgres_trials(result["url"])
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [point_of(t) for t in failed] == [result["point"]]  # the killed trial, failed once
    again = [t for t in trials if t.state == TrialState.COMPLETE and point_of(t) == result["point"]]
    assert len(again) == 1 and again[0].number > failed[0].number
    # it ran on a survivor, from scratch (no shared folder), and the killed machine's run stopped
    ran = [i for i, folder in enumerate(result["folders"])
           if batch_of(sweep.run_folder(folder, result["point"])) == NB_BATCHES]
    assert len(ran) == 1 and ran[0] != result["killed"]
    log = (sweep.run_folder(result["folders"][ran[0]], result["point"]) / sweep.LOG_FILE).read_text()
    assert log.count("--- trial") == 1 and f"--- trial {again[0].number} " in log
    stopped = sweep.run_folder(result["folders"][result["killed"]], result["point"])
    assert 0 < batch_of(stopped) < NB_BATCHES
