"""EWC where forgetting happens: what the score on a first latent range keeps after a stream moves
to a much longer second range, for each EWC anchor and strength, over 3 seeds, with its controls.

The stream (the hard track's period-counts reader, which learns "avoid 3, 5, 7" on short numbers):
FIRST_BATCHES on latents FIRST at lambda_ 0, then SECOND_BATCHES resumed on SECOND, whose candidates
are 22-26 binary digits where the first range's are 15-19. Every row of a seed resumes a copy of the
same first phase (one per Fisher setting and anchor kind), so the rows differ only in what they do
after the switch. Rows, in the order they run:
- lambda_ 0 (no EWC), and the control that keeps training on FIRST: the loss is their difference;
- each anchor (train.py's ewc_anchor) at each lambda_;
- the upper reference (both ranges, interleaved LEG_BATCHES at a time);
- at lambda_ 1000, then 100: the wrong moment (the switch anchor held only after SWITCH_LATE
  batches on SECOND), the switch anchor with D's model Fisher, each anchor with online decay off
  (fisher_decay 0); between the two, the streams that do not forget, for comparison: the short
  jump and today's residue stream.

Runs resume after a kill. Outputs in forgetting/. Run: python training/sweeps/forgetting.py [--workers=2]
"""
import contextlib
import csv
import fcntl
import json
import multiprocessing
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import utils  # noqa: E402

if __name__ == "__main__":
    utils.quiet_startup()
from training import checkpoint, measuring, sweep_results, train  # noqa: E402

SEEDS = (0, 1, 2)               # train.py's --seed of each run
LAMBDAS = (1.0, 10.0, 100.0, 1000.0)  # EWC strengths of each anchor (0 is the first row)
HARD = {"generator_input": "discriminator", "generator_layers": 0, "discriminator_input": "bits",
        "discriminator_loss": "bce", "reader": "periods", "discriminator_activation": "sin",
        "generator_activation": "sin", "test_session_occurrences": 100}  # the hard track's reader
FIRST = (1, 10_000)             # latents of the first range: candidates below 2**19
SECOND = (2_000_000, 16_000_000)  # latents of the second: candidates of 22-26 binary digits
FIRST_BATCHES, SECOND_BATCHES = 100, 200
LEG_BATCHES = 10                # the upper reference: batches on each range in turn
SWITCH_LATE = 20                # the wrong moment: batches on SECOND before the anchor is held
TEST_LATENTS = 10_000           # latents of each measurement (all of FIRST)
TEST_SEED = 12345               # seeds the measurement's latents, the same for every row
WORKERS = 2                     # runs at once (each a process); --workers=N overrides
OUT = Path(__file__).with_suffix("")
COLUMNS = ("row", "seed", "first_before", "first_after", "second_after", "accuracy_after",
           "seconds_per_batch")


def streams() -> dict:
    """Each stream: (its train.py constants, first range, second range, batches on each)."""
    return {"hard": (HARD, FIRST, SECOND, FIRST_BATCHES, SECOND_BATCHES),
            "short jump": (HARD, FIRST, (100_000, 1_000_000), FIRST_BATCHES, SECOND_BATCHES),
            "residue": ({}, (1, 500_000), (500_001, 1_000_000), 50, 50)}


def first_of(anchor: str, decay: float) -> dict:
    """The first phase of an anchor's rows: the average's runs its average from the start; the
    switch's is the per-batch run (at lambda_ 0 they train alike) whose anchor it holds at the switch."""
    return {"fisher_decay": decay, "ewc_anchor": "average" if anchor == "average" else "batch"}


def rows() -> dict:
    """name -> (stream, first phase's constants, legs of the second: [(range name, batches, constants)])."""
    on = {"fisher_decay": 0.9, "ewc_anchor": "batch"}
    out = {"lambda_ 0 (no EWC)": ("hard", on, [("second", SECOND_BATCHES, {})]),
           "control: the first range again": ("hard", on, [("first", SECOND_BATCHES, {})])}
    for anchor in train.EWC_ANCHORS:
        for lambda_ in LAMBDAS:
            out[f"{anchor}, lambda_ {lambda_:g}"] = ("hard", first_of(anchor, 0.9), [
                ("second", SECOND_BATCHES, {"ewc_anchor": anchor, "lambda_": lambda_})])
    turns = SECOND_BATCHES // (2 * LEG_BATCHES)
    out["reference: both ranges in turn"] = (
        "hard", on, [(name, LEG_BATCHES, {}) for _ in range(turns) for name in ("first", "second")])
    for lambda_ in reversed(LAMBDAS[2:]):  # the strongest first: it runs first
        out.update(extra_rows(lambda_))
        if lambda_ == LAMBDAS[-1]:
            out["short jump, lambda_ 0"] = ("short jump", on, [("second", SECOND_BATCHES, {})])
            out["short jump control"] = ("short jump", on, [("first", SECOND_BATCHES, {})])
            out["residue stream, lambda_ 0"] = ("residue", on, [("second", 50, {})])
            out["residue control"] = ("residue", on, [("first", 50, {})])
    return out


def extra_rows(lambda_: float) -> dict:
    """The rows beside the anchors' at one strength: the wrong moment, D's model Fisher, decay off."""
    on, switch = {"fisher_decay": 0.9, "ewc_anchor": "batch"}, {"ewc_anchor": "switch", "lambda_": lambda_}
    return {
        f"wrong moment: switch after {SWITCH_LATE} batches, lambda_ {lambda_:g}": (
            "hard", on, [("second", SWITCH_LATE, {}), ("second", SECOND_BATCHES - SWITCH_LATE, switch)]),
        f"switch, lambda_ {lambda_:g}, D's model Fisher": (
            "hard", {**on, "discriminator_fisher": "model"}, [("second", SECOND_BATCHES, switch)]),
        **{f"{anchor}, lambda_ {lambda_:g}, decay off": ("hard", first_of(anchor, 0.0), [
            ("second", SECOND_BATCHES, {"ewc_anchor": anchor, "lambda_": lambda_})])
           for anchor in ("switch", "batch", "average")},
    }


def argv_of(constants: dict) -> list:
    return [f"--{k}={v}" for k, v in constants.items()]


def train_leg(run: Path, constants: dict, bounds: tuple, nb_batches: int) -> dict:
    config = train.parse_config([*argv_of(constants), f"--low_latent={bounds[0]}", f"--high_latent={bounds[1]}",
                                 f"--nb_batches={nb_batches}", f"--checkpoint_dir={run}"])
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "train.log", "a") as log, contextlib.redirect_stdout(log):
        return train.train(config)


def measure(run: Path, bounds: tuple) -> dict:
    """The score of the checkpoint in ``run`` on TEST_LATENTS latents of ``bounds``, and D's accuracy."""
    generator, discriminator = checkpoint.load_networks(run)
    report = measuring.test_models(generator, discriminator, TEST_LATENTS, *bounds, seed=TEST_SEED)
    return {"score": report["score"], "accuracy": report["discriminator_on_uniform"]["balanced_accuracy"]}


def first_phase(stream: str, constants: dict, seed: int) -> Path:
    """The checkpoint of the first phase of ``stream`` with ``constants``, trained once and measured."""
    base, first, _, batches, _ = streams()[stream]
    key = "-".join(f"{k}{v}" for k, v in sorted(constants.items()))
    run = OUT / "first" / stream.replace(" ", "_") / key / f"seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    with open(run.parent / f"seed{seed}.lock", "w") as lock:  # another worker may be training it
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (run / "first.json").exists():
            train_leg(run, {**base, **constants, "lambda_": 0.0, "seed": seed}, first, batches)
            checkpoint.write_if_changed(run / "first.json", json.dumps(measure(run, first)).encode())
    return run


def one_run(name: str, seed: int) -> dict:
    """Both phases of one row's run (each skipped when done) and its row of COLUMNS."""
    stream, first_constants, legs = rows()[name]
    base, first, second, first_batches, _ = streams()[stream]
    source = first_phase(stream, first_constants, seed)
    run = OUT / "runs" / name.replace(" ", "_").replace(",", "").replace(":", "") / f"seed{seed}"
    result = run / "result.json"
    if not result.exists():
        if not (run / checkpoint.STATE_FILE).exists():  # a copy is renamed whole: a kill leaves none
            partial = run.with_name(run.name + ".copy")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(source, partial)
            shutil.rmtree(run, ignore_errors=True)
            partial.rename(run)
        constants, done = {**base, **first_constants, "lambda_": 0.0, "seed": seed}, first_batches
        for range_name, batches, changes in legs:
            constants, done = {**constants, **changes}, done + batches
            train_leg(run, constants, first if range_name == "first" else second, done)
        rows_ = checkpoint.read_state(run)["history"][first_batches:]
        after, on_second = measure(run, first), measure(run, second)
        checkpoint.write_if_changed(result, json.dumps({
            "first_before": json.loads((source / "first.json").read_text())["score"],
            "first_after": after["score"], "accuracy_after": after["accuracy"],
            "second_after": on_second["score"],
            "seconds_per_batch": sum(r["seconds"] for r in rows_) / len(rows_)}).encode())
    values = json.loads(result.read_text())
    print(f"{name}, seed {seed}: first range {values['first_before']:.3f} -> {values['first_after']:.3f}, "
          f"second {values['second_after']:.3f}", flush=True)
    return {"row": name, "seed": seed, **values}


def _task(name: str, seed: int) -> dict:
    utils.quiet_startup()
    return one_run(name, seed)


def paired(runs: list, reference: list, key: str) -> tuple:
    """Mean and interval over seeds of runs[key] - reference[key], seed by seed."""
    by_seed = {r["seed"]: r[key] for r in reference}
    return sweep_results.mean_ci([r[key] - by_seed[r["seed"]] for r in runs if r["seed"] in by_seed])


def signed(mean_ci: tuple) -> str:
    mean, half = mean_ci
    if mean is None:
        return "n/a"
    return f"{mean:+.3f}" + ("" if half is None else f" +- {half:.3f}")


def prevented(runs: list, base: list, control: list) -> str:
    """The share of the lambda_ 0 row's loss (the control's score on the first range minus its) that
    ``runs`` prevent, over the seeds all three share; n/a unless that loss's interval excludes 0."""
    by_seed = [{r["seed"]: r["first_after"] for r in rows} for rows in (runs, base, control)]
    seeds = sorted(set.intersection(*(set(d) for d in by_seed)))
    run, zero, full = ([d[s] for s in seeds] for d in by_seed)
    loss, half = sweep_results.mean_ci([c - b for c, b in zip(full, zero)])
    if loss is None or half is None or loss - half <= 0:
        return "n/a"
    return f"{sweep_results.mean_ci([r - b for r, b in zip(run, zero)])[0] / loss:.0%}"


def format_table(results: list) -> str:
    by_row = {name: [r for r in results if r["row"] == name] for name in rows()}
    base, control = by_row["lambda_ 0 (no EWC)"], by_row["control: the first range again"]
    references = {"hard": control, "short jump": by_row["short jump control"],
                  "residue": by_row["residue control"]}
    lines = [
        f"The hard-track stream: {FIRST_BATCHES} batches on latents {FIRST[0]:,}..{FIRST[1]:,} at lambda_ 0, "
        f"then {SECOND_BATCHES} on {SECOND[0]:,}..{SECOND[1]:,}. Scores: distinct primes among the outputs "
        f"for {TEST_LATENTS:,} latents of a range over chance's count (a uniform odd sampler scores 1). "
        "Change: the first range's score after the stream minus its stream's control's (which kept "
        "training on the first range), seed by seed; loss prevented: the share of the lambda_ 0 row's "
        "change that a row avoids, over the seeds the three rows share (n/a unless that change's interval "
        "excludes 0); new range: the score there minus the lambda_ 0 row's, seed by seed. Mean +- "
        f"{sweep_results.CONFIDENCE:.0%} interval (Student t) over seeds.", "",
        "| row | seeds | first range, after its phase | first range, after the stream | change against "
        "the control | loss prevented | new range | against lambda_ 0 | seconds a batch |",
        "|---|---|---|---|---|---|---|---|---|"]
    for name, runs in by_row.items():
        if not runs:
            continue
        stream = rows()[name][0]
        reference = references[stream]
        change = (None, None) if runs is reference else paired(runs, reference, "first_after")
        hard = stream == "hard"

        def cell(key: str, form: str = ".3f") -> str:
            return sweep_results.cell(sweep_results.mean_ci([r[key] for r in runs]), form)
        lines.append(f"| {name} | {len(runs)} | {cell('first_before')} | {cell('first_after')} | "
                     f"{signed(change)} | {prevented(runs, base, control) if hard else 'n/a'} | "
                     f"{cell('second_after')} | {signed(paired(runs, base, 'second_after')) if hard else 'n/a'} | "
                     f"{cell('seconds_per_batch', '.2f')} |")
    return "\n".join(lines + ["", "Made by `python training/sweeps/forgetting.py`.", ""])


def write_outputs(results: list) -> None:
    with open(OUT / "trials.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, COLUMNS)
        writer.writeheader()
        writer.writerows(results)
    (OUT / "results.md").write_text(format_table(results))


def main(argv: list) -> int:
    workers = WORKERS
    for arg in argv:
        if not arg.startswith("--workers=") or not arg.removeprefix("--workers=").isdigit():
            print(f"error: {arg}: the only option is --workers=N", file=sys.stderr)
            return 2
        workers = max(1, int(arg.removeprefix("--workers=")))
    OUT.mkdir(exist_ok=True)
    tasks = [(name, seed) for name in rows() for seed in SEEDS]
    results = []
    context = multiprocessing.get_context("spawn")  # TensorFlow does not survive a fork
    try:
        with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
            for result in pool.map(_task, *zip(*tasks)):
                results.append(result)
                write_outputs(results)
    except utils.OptimusError as err:
        utils.print_error(err)
        return 2
    print(f"Outputs: {OUT / 'results.md'}, {OUT / 'trials.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
