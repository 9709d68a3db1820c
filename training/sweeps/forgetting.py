"""EWC where it should matter: what the score on a first latent range keeps after training on a
disjoint second one, at EWC strengths lambda_ 0, 1 and 10 over 3 seeds.

Each run trains on FIRST, is measured there, resumes on SECOND (train.py allows the range to
change on resume) and is measured on FIRST again; runs resume after a kill. Outputs in
forgetting/. Run: python training/sweeps/forgetting.py
"""
import contextlib
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import utils  # noqa: E402

if __name__ == "__main__":
    utils.quiet_startup()
from training import checkpoint, measuring, sweep_results, train  # noqa: E402

SEEDS = (0, 1, 2)               # train.py's --seed of each run
LAMBDAS = (0.0, 1.0, 10.0)      # train.py's lambda_ (0: no EWC)
FIRST = (1, 500_000)            # latents of the first range, then of the disjoint second one
SECOND = (500_001, 1_000_000)
FIRST_BATCHES = SECOND_BATCHES = 50  # batches on each range (the default learns within 50)
TEST_LATENTS = 100_000          # latents of FIRST in each measurement
TEST_SEED = 12345               # seeds the measurement's latents, the same before and after
OUT = Path(__file__).with_suffix("")
COLUMNS = ("lambda_", "seed", "score_before", "score_after", "accuracy_before", "accuracy_after",
           "second_range_score", "seconds")


def measure_first_range(run: Path) -> dict:
    """The score of the checkpoint in ``run`` on FIRST, and its D's balanced accuracy there."""
    generator, discriminator = checkpoint.load_networks(run)
    report = measuring.test_models(generator, discriminator, TEST_LATENTS, *FIRST, seed=TEST_SEED)
    return {"score": report["score"], "accuracy": report["discriminator_on_uniform"]["balanced_accuracy"]}


def train_range(run: Path, argv: list, bounds: tuple, batches: int) -> dict:
    config = train.parse_config([*argv, f"--low_latent={bounds[0]}", f"--high_latent={bounds[1]}",
                                 f"--nb_batches={batches}", f"--checkpoint_dir={run}"])
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "train.log", "a") as log, contextlib.redirect_stdout(log):
        return train.train(config)


def one_run(lambda_: float, seed: int) -> dict:
    """Both phases of one run (each skipped when done before) and its row of COLUMNS."""
    run = OUT / "runs" / f"lambda{lambda_:g}" / f"seed{seed}"
    argv = [f"--lambda_={lambda_}", f"--seed={seed}"]
    before_file, after_file = run / "before.json", run / "after.json"
    if not before_file.exists():
        train_range(run, argv, FIRST, FIRST_BATCHES)
        checkpoint.write_if_changed(before_file, json.dumps(measure_first_range(run)).encode())
    if not after_file.exists():
        state = train_range(run, argv, SECOND, FIRST_BATCHES + SECOND_BATCHES)
        after = {**measure_first_range(run), "second_range_score": state["tests"][-1]["in_range"]["score"]}
        checkpoint.write_if_changed(after_file, json.dumps(after).encode())
    before, after = json.loads(before_file.read_text()), json.loads(after_file.read_text())
    seconds = sum(row["seconds"] for row in checkpoint.read_state(run)["history"])
    print(f"lambda_={lambda_:g} seed {seed}: score on the first range {before['score']:.3f} before, "
          f"{after['score']:.3f} after", flush=True)
    return {"lambda_": lambda_, "seed": seed, "score_before": before["score"], "score_after": after["score"],
            "accuracy_before": before["accuracy"], "accuracy_after": after["accuracy"],
            "second_range_score": after["second_range_score"], "seconds": round(seconds, 1)}


def format_table(rows: list) -> str:
    lines = [f"Score: distinct primes among the outputs for {TEST_LATENTS:,} latents of the first range "
             f"{FIRST[0]:,}..{FIRST[1]:,}, over chance's count (a uniform odd sampler scores 1), after "
             f"{FIRST_BATCHES} batches on it (before) and after {SECOND_BATCHES} more on "
             f"{SECOND[0]:,}..{SECOND[1]:,} (after); D accuracy: its balanced accuracy on uniform "
             f"odd candidates of the first range, half prime. Mean +- {sweep_results.CONFIDENCE:.0%} "
             "interval (Student t) over seeds.", "",
             "| lambda_ | seeds | score before | score after | change | D accuracy before | "
             "D accuracy after | score on the second range | seconds |", "|---|---|---|---|---|---|---|---|---|"]
    for lambda_ in LAMBDAS:
        runs = [r for r in rows if r["lambda_"] == lambda_]
        if not runs:
            continue

        def cell(key: str, form: str = ".3f", scale: float = 1) -> str:
            mean, half = sweep_results.mean_ci([r[key] for r in runs])
            return sweep_results.cell(tuple(None if v is None else scale * v for v in (mean, half)), form)
        mean, half = sweep_results.mean_ci([r["score_after"] - r["score_before"] for r in runs])
        change = f"{mean:+.3f}" + ("" if half is None else f" +- {half:.3f}")
        lines.append(f"| {lambda_:g} | {len(runs)} | {cell('score_before')} | {cell('score_after')} | "
                     f"{change} | {cell('accuracy_before', '.1f', 100)}% | {cell('accuracy_after', '.1f', 100)}% | "
                     f"{cell('second_range_score')} | {cell('seconds', '.0f')} |")
    return "\n".join(lines + ["", "Made by `python training/sweeps/forgetting.py`.", ""])


def main() -> int:
    try:
        rows = [one_run(lambda_, seed) for lambda_ in LAMBDAS for seed in SEEDS]
    except utils.OptimusError as err:
        utils.print_error(err)
        return 2
    with open(OUT / "trials.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (OUT / "results.md").write_text(format_table(rows))
    print(f"Outputs: {OUT / 'results.md'}, {OUT / 'trials.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
