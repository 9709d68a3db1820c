"""training/sweeps/forgetting.py: its rows, its paired statistics and a small stream run end to end."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training" / "sweeps"))

import forgetting  # noqa: E402
from training import checkpoint  # noqa: E402


def test_every_hard_row_trains_as_long_after_the_switch_and_differs_only_there():
    rows = forgetting.rows()
    assert {"lambda_ 0 (no EWC)", "control: the first range again", "reference: both ranges in turn"} <= set(rows)
    for name, (stream, first, legs) in rows.items():
        if stream == "hard":
            assert sum(batches for _, batches, _ in legs) == forgetting.SECOND_BATCHES, name
            assert first["ewc_anchor"] in ("batch", "average") and "lambda_" not in first, name
    for anchor in ("batch", "switch", "average"):
        for lambda_ in forgetting.LAMBDAS:
            _, _, legs = rows[f"{anchor}, lambda_ {lambda_:g}"]
            assert legs == [("second", forgetting.SECOND_BATCHES, {"ewc_anchor": anchor, "lambda_": lambda_})]
    late = rows[f"wrong moment: switch after {forgetting.SWITCH_LATE} batches, lambda_ 1000"][2]
    assert late[0] == ("second", forgetting.SWITCH_LATE, {}) and late[1][2]["ewc_anchor"] == "switch"
    turns = rows["reference: both ranges in turn"][2]
    assert {name for name, _, _ in turns} == {"first", "second"} and turns[-1][0] == "second"


def result(row: str, seed: int, first_after: float, second_after: float = 2.0) -> dict:
    return {"row": row, "seed": seed, "first_before": 2.2, "first_after": first_after,
            "second_after": second_after, "accuracy_after": 0.8, "seconds_per_batch": 0.7}


def test_the_table_pairs_seeds_and_measures_the_loss_prevented():
    base, control, half = "lambda_ 0 (no EWC)", "control: the first range again", "switch, lambda_ 100"
    results = ([result(base, s, 2.0 + 0.01 * s) for s in range(3)]
               + [result(control, s, 2.4 + 0.01 * s, 1.4) for s in range(3)]
               + [result(half, s, 2.2 + 0.01 * s, 1.9) for s in range(3)])
    assert forgetting.paired(results[:3], results[3:6], "first_after") == pytest.approx((-0.4, 0.0), abs=1e-9)
    assert forgetting.paired(results[:2], results[5:6], "first_after")[0] is None  # no seed in common
    lines = {line.split(" | ")[0].lstrip("| "): line for line in forgetting.format_table(results).splitlines()}
    assert "| -0.400 +- 0.000 | 0% |" in lines[base]
    assert "| -0.200 +- 0.000 | 50% |" in lines[half]
    assert "| -0.100 +- 0.000 |" in lines[half]  # the new range: 1.9 against lambda_ 0's 2.0
    assert "| n/a | 100% |" in lines[control]  # the control is not compared with itself
    # a loss whose interval holds 0 gives no share; nor does a row of another stream
    noisy = [result(control, s, 2.0 + 0.01 * s + (0.3 if s == 2 else -0.1)) for s in range(3)]
    shorter = [result("short jump control", s, 2.3) for s in range(3)]
    lines = {line.split(" | ")[0].lstrip("| "): line for line in
             forgetting.format_table(results[:3] + noisy + results[6:] + shorter).splitlines()}
    assert "| n/a | 1.900 +- 0.000 |" in lines[half] and "| n/a | n/a | 2.000" in lines["short jump control"]


@pytest.mark.slow
def test_a_small_stream_holds_the_switch_anchor_at_the_switch_or_late(monkeypatch, tmp_path):
    monkeypatch.setattr(forgetting, "OUT", tmp_path)
    monkeypatch.setattr(forgetting, "HARD", {**forgetting.HARD, "batch_size": 300, "steps": 3,
                                             "generator_steps": 2, "nb_samples": 10, "test_samples": 100})
    for name, value in (("FIRST_BATCHES", 3), ("SECOND_BATCHES", 4), ("SWITCH_LATE", 1), ("TEST_LATENTS", 500)):
        monkeypatch.setattr(forgetting, name, value)
    on_time = forgetting.one_run("switch, lambda_ 1000", 0)
    late = forgetting.one_run("wrong moment: switch after 1 batches, lambda_ 1000", 0)
    assert on_time["first_before"] == late["first_before"]  # one first phase, shared
    runs = {p.parent.parent.name: json.loads((p.parent / checkpoint.STATE_FILE).read_text())
            for p in tmp_path.glob("runs/*/seed0/result.json")}
    assert runs["switch_lambda__1000"]["anchor_switches"] == [3]
    assert runs["wrong_moment_switch_after_1_batches_lambda__1000"]["anchor_switches"] == [4]
    assert all(state["batch"] == 7 for state in runs.values())
