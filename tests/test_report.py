"""test.py: the score against known generators, edge bias, distinct primes, ranges, the CLI."""
import csv
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest
from support import error_line

REPO_ROOT = Path(__file__).resolve().parents[1]
# Loaded by path: the name "test" would also match the standard library's test package.
_spec = importlib.util.spec_from_file_location("optimus_test", REPO_ROOT / "test.py")
optimus_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(optimus_test)

import utils  # noqa: E402  (on sys.path once test.py is loaded)
from training import calibration, checkpoint, measuring, oracle, registry, rules, train  # noqa: E402

CALIBRATION_SAMPLES = 100_000   # every latent of [1, 10**5]: about 1e4 primes, 1% noise
CLI_TIMEOUT = 240               # seconds per command-line run (TensorFlow's import dominates)
Map = calibration._Map


def exact_discriminator(rows):
    """A discriminator that is always right: P(prime) is the exact primality of 2*round(x)+1."""
    return oracle.is_prime(utils.to_odd_integer(rows)).astype(np.float32)


def run_test(f, discriminator=None, n_samples=CALIBRATION_SAMPLES, low=1, high=10**5, seed=0, **kw):
    return measuring.test_models(Map(f), discriminator, n_samples, low, high, seed, **kw)


# -- calibration --------------------------------------------------------------------------------

def test_uniform_odd_sampler_scores_one_within_its_sd():
    report = run_test(lambda z: z, n_samples=20_000, high=10**6)
    assert abs(report["score"] - 1.0) <= 2 * report["score_sd"]
    assert report["score_sd"] == pytest.approx(1 / math.sqrt(report["expected_primes"]), rel=0.1)
    assert report["distinct_fraction"] == 1.0 and report["p_value"] > 0.01


@pytest.mark.parametrize("modulus, phi", [(6, 2), (30, 8), (210, 48)])
def test_progressions_score_their_dirichlet_values(modulus, phi):
    report = run_test(lambda z: (modulus // 2) * z)
    assert report["score"] == pytest.approx(modulus / (2 * phi), rel=0.03)
    assert report["p_value"] < 1e-6


def test_a_constant_prime_scores_zero_and_is_not_significant():
    report = run_test(lambda z: np.full_like(z, 3.0), n_samples=1000)  # always 7
    assert report["prime_ratio"] == 1.0 and report["distinct_primes"] == 1
    assert report["score"] < 0.02 and report["p_value"] > 0.99


def test_a_two_prime_repeater_scores_near_zero_with_p_near_one():
    report = run_test(lambda z: 3.0 + 2.0 * (z % 2), n_samples=1000)  # 7, 11, 7, 11, ...
    assert report["primes"] == 1000 and report["distinct_primes"] == 2
    assert report["score"] < 0.05 and report["p_value"] > 0.99
    # counted with repeats, the same outputs would look overwhelming
    from scipy import stats
    assert stats.binomtest(report["primes"], 1000, report["chance"], alternative="greater").pvalue < 1e-100


def test_collapse_onto_a_composite_scores_zero():
    report = run_test(lambda z: np.full_like(z, 4.0), n_samples=100)  # always 9
    assert report["score"] == 0.0 and report["p_value"] == 1.0


def test_original_slope_17_29_scores_one():
    report = run_test(lambda z: 17.29 * z, n_samples=20_000, high=10**6)
    assert abs(report["score"] - 1.0) <= 3 * report["score_sd"]


# -- edge bias of the local baseline ------------------------------------------------------------

def test_no_window_lets_outputs_at_its_bottom_gain_more_than_0_2_percent():
    # under the smooth density 1/ln n, the bottom of each window against the window's mean
    edges = oracle._EDGES[(oracle._EDGES >= 3000) & (oracle._EDGES < 2**50)].astype(np.float64)
    lo, hi = edges[:-1], edges[1:] - 1
    li = np.vectorize(lambda v: float(mpmath.li(v)))
    mean = (li(hi) - li(lo)) / (hi - lo)
    assert np.max((1 / np.log(lo)) / mean) - 1 < 0.002


def bottoms_of_power_of_two_bins(exponents=range(20, 27), count=100_000) -> np.ndarray:
    """The first ``count`` odd integers of each bin [2^k, 2^(k+1)): an adversary of bin baselines."""
    return np.concatenate([2**k + 1 + 2 * np.arange(count) for k in exponents]).astype(np.uint64)


def test_outputs_at_the_bottom_of_power_of_two_bins_score_at_most_1_01():
    candidates = bottoms_of_power_of_two_bins()
    primes = oracle.is_prime(candidates).sum()
    score = primes / oracle.local_density(candidates).sum()  # every such output, no sampling
    assert score <= 1.01
    # the control: against the density of whole power-of-two bins the same outputs gain
    by_bin = sum(oracle.odd_prime_density(2**k, 2 ** (k + 1) - 1) * 100_000 for k in range(20, 27))
    assert primes / by_bin > 1.02


# -- the report -----------------------------------------------------------------------------------

def test_multiples_and_bins_describe_the_outputs():
    report = run_test(lambda z: 3 * z, n_samples=30_000)  # 6z+1: never a multiple of 3
    assert report["multiples"]["3"] == 0.0
    assert report["multiples"]["5"] == pytest.approx(0.2, abs=0.01)
    assert sum(b["share"] for b in report["bins"]) == pytest.approx(1.0)
    assert report["chance"] == pytest.approx(sum(b["share"] * b["chance"] for b in report["bins"]))


def test_confusion_cells_sum_to_n_samples_and_oracle_is_perfect():
    report = run_test(lambda z: z, Map(exact_discriminator), n_samples=5000)
    cells = report["confusion"]
    assert sum(cells.values()) == 5000
    assert cells["false_positives"] == cells["false_negatives"] == 0
    assert cells["true_positives"] == report["primes"] and report["balanced_accuracy"] == 1.0


def test_discriminator_always_saying_prime_has_balanced_accuracy_one_half():
    report = run_test(lambda z: z, Map(lambda x: np.full_like(x, 0.9)), n_samples=5000)
    assert report["confusion"]["true_negatives"] == 0 and report["balanced_accuracy"] == 0.5


def test_evaluate_reports_the_training_range_and_the_range_beyond():
    result = measuring.evaluate(Map(lambda z: z), None, 1000, 1, 10**5, seed=3)
    assert (result["in_range"]["low_latent"], result["in_range"]["high_latent"]) == (1, 10**5)
    assert (result["beyond"]["low_latent"], result["beyond"]["high_latent"]) == (10**5 + 1, 10**6)
    assert result["in_range"]["n_samples"] == result["beyond"]["n_samples"] == 1000
    everything_trained = measuring.evaluate(Map(lambda z: z), None, 100, 1, utils.LATENT_LIMIT)
    assert everything_trained["beyond"] is None
    assert "beyond" not in measuring.format_report(everything_trained)


def test_report_is_json_serialisable_and_verbose_levels_add_detail():
    result = measuring.evaluate(Map(lambda z: 3 * z), Map(exact_discriminator), 500, 1, 10**4, seed=0, verbose=3)
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    texts = [measuring.format_report(result, verbose=v) for v in range(4)]
    assert "said prime" not in texts[0] and "said prime" in texts[1]
    assert "from 2^k" not in texts[1] and "from 2^k" in texts[2]
    assert "first distinct primes" not in texts[2] and "first distinct primes" in texts[3]
    assert all(word in texts[0] for word in ("score", "p-value", "in range", "beyond"))


def test_candidates_csv_lists_every_sampled_latent(tmp_path):
    samples = []
    measuring.evaluate(Map(lambda z: 3 * z + 0.4), None, 200, 1, 1000, seed=1, samples=samples)
    path = tmp_path / "out.csv"
    optimus_test.write_candidates(str(path), samples)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert path.read_text().splitlines()[0] == "latent,candidate,is_prime"
    assert len(rows) == 400 and len({r["latent"] for r in rows}) == 400
    for r in rows:
        assert int(r["candidate"]) == 6 * int(r["latent"]) + 1
        assert int(r["is_prime"]) == int(oracle.is_prime(int(r["candidate"])))


@pytest.mark.parametrize("argv", [["--n_samples=0"], ["--n_samples=10.0"], ["--seed=-1"], ["--verbose=4"],
                                  [f"--high_latent={measuring.MAX_LATENT + 1}"], ["--sampling=best"]])
def test_bad_arguments_are_refused_in_one_line_at_the_command_line(argv):
    with pytest.raises(utils.OptimusError) as info:
        rules.parse_overrides(argv, optimus_test.DEFAULTS, optimus_test.RULES)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("n_samples, low, high, beyond", [(11, 1, 10, 0), (5, 5, 4, 0), (5, 0, 10, 0), (5, 1, 10, 12)])
def test_a_range_too_small_for_n_samples_is_refused_at_the_edge(n_samples, low, high, beyond):
    """measuring.check_ranges, which test.py calls once its ranges are known (the beyond range
    (10, 12] holds 2 latents); the functions after it trust it."""
    with pytest.raises(utils.OptimusError, match="n_samples|low_latent"):
        measuring.check_ranges(n_samples, low, high, beyond)
    measuring.check_ranges(2, 1, 10, 12)  # the control: 2 latents fit both ranges


def test_diverging_generator_raises_optimus_error():
    with pytest.raises(utils.OptimusError, match="NaN"):
        run_test(lambda z: np.full_like(z, np.nan), n_samples=10)


# -- command line: every run starts in a temporary directory, to show it works from anywhere ----

def save_pair(directory: Path) -> None:
    """Untrained networks of the default method, saved as a checkpoint's weight files."""
    directory.mkdir()
    config = train.parse_config([])
    for role, name in (("generator", checkpoint.GENERATOR_FILE), ("discriminator", checkpoint.DISCRIMINATOR_FILE)):
        architecture = (registry.generator_architecture if role == "generator"
                        else registry.discriminator_architecture)(config)
        checkpoint.save_network(registry.build(architecture, role).model, directory / name, architecture)


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """{name: CompletedProcess} of all command-line runs, started together (imports take seconds)."""
    root = tmp_path_factory.mktemp("cli")
    fresh, broken, empty = root / "fresh", root / "broken", root / "empty"
    save_pair(fresh)
    save_pair(broken)
    generator_file = broken / checkpoint.GENERATOR_FILE
    generator_file.write_bytes(generator_file.read_bytes()[:2000])  # truncated .h5
    empty.mkdir()
    small = ["--n_samples=300", "--low_latent=1", "--high_latent=10000"]
    runs = {
        "json": [f"--checkpoint_dir={fresh}", *small, "--json"],
        "csv_stdout": [f"--checkpoint_dir={fresh}", *small, "--candidates=-"],
        "csv_file": [f"--checkpoint_dir={fresh}", *small, f"--candidates={root / 'c.csv'}"],
        "calibration": ["--calibration", "--n_samples=2000"],
        "json_and_csv_stdout": [f"--checkpoint_dir={fresh}", "--json", "--candidates=-"],
        "no_models": [f"--checkpoint_dir={empty}"],
        "truncated": [f"--checkpoint_dir={broken}"],
        "too_many_samples": [f"--checkpoint_dir={fresh}", "--n_samples=11", "--high_latent=10"],
        "bad_flag": ["--n_sample=5"],
    }
    procs = {name: subprocess.Popen([sys.executable, str(REPO_ROOT / "test.py"), *args], cwd=root,
                                    env=dict(os.environ), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, args in runs.items()}
    results = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=CLI_TIMEOUT)
        results[name] = subprocess.CompletedProcess(runs[name], proc.returncode, stdout, stderr)
    results["csv_path"] = root / "c.csv"
    return results


def assert_one_line_error(result, *names):
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    line = error_line(result.stderr)
    for name in names:
        assert name in line


def test_cli_json_carries_both_ranges(cli):
    result = cli["json"]
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["in_range"]["high_latent"] == 10_000 and report["beyond"]["low_latent"] == 10_001
    assert report["in_range"]["n_samples"] == report["beyond"]["n_samples"] == 300
    assert sum(report["beyond"]["confusion"].values()) == 300


def test_cli_candidates_to_stdout_leave_the_report_on_stderr(cli):
    result = cli["csv_stdout"]
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == optimus_test.CSV_HEADER and len(lines) == 601
    assert "score" in result.stderr


def test_cli_candidates_to_a_file(cli):
    assert cli["csv_file"].returncode == 0, cli["csv_file"].stderr
    assert len(cli["csv_path"].read_text().splitlines()) == 601
    assert "score" in cli["csv_file"].stdout


def test_cli_calibration_prints_the_table(cli):
    result = cli["calibration"]
    assert result.returncode == 0, result.stderr
    assert all(row[0] in result.stdout for row in calibration.CALIBRATION + calibration.WINDOW_CALIBRATION)


def test_cli_refuses_json_and_candidates_both_on_stdout(cli):
    assert_one_line_error(cli["json_and_csv_stdout"], "--json", "--candidates")


def test_cli_without_pretrained_models_exits_2(cli):
    assert_one_line_error(cli["no_models"], "run training/train.py first")


def test_cli_truncated_checkpoint_exits_2_naming_the_file(cli):
    assert_one_line_error(cli["truncated"], checkpoint.GENERATOR_FILE)


def test_cli_n_samples_beyond_latent_range_exits_2(cli):
    assert_one_line_error(cli["too_many_samples"], "n_samples")


def test_cli_unknown_flag_exits_2(cli):
    assert_one_line_error(cli["bad_flag"], "n_sample")


def test_discriminator_is_also_judged_on_uniform_candidates_half_of_them_prime():
    perfect = run_test(lambda z: z, Map(exact_discriminator), n_samples=4000)["discriminator_on_uniform"]
    assert perfect["balanced_accuracy"] == 1.0 and perfect["log_loss"] < 1e-5
    coin = run_test(lambda z: z, Map(lambda x: np.full_like(x, 0.5)), n_samples=4000)
    assert coin["discriminator_on_uniform"]["log_loss"] == pytest.approx(math.log(2))
    assert coin["discriminator_log_loss"] == pytest.approx(math.log(2))
    assert coin["discriminator_on_uniform"]["balanced_accuracy"] == 0.5
