"""Tests of test.py: calibration of the score against known samplers, the report, the command line."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Loaded by path: the name "test" would also match the standard library's test package.
_spec = importlib.util.spec_from_file_location("optimus_test", REPO_ROOT / "test.py")
optimus_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(optimus_test)

import utils  # noqa: E402  (on sys.path once test.py is loaded)
from training import model as model_lib  # noqa: E402
from training import training_utils  # noqa: E402

CALIBRATION_SAMPLES = 100_000   # about 1e4 primes: the score's noise is about 1%
CLI_TIMEOUT = 240               # seconds per command-line run (TensorFlow's import dominates)


class Map:
    """Stand-in network: applies ``f`` to float64 rows of shape (n, 1), as a keras model would."""

    def __init__(self, f):
        self.f = f

    def __call__(self, rows, training=False):
        return self.f(np.asarray(rows, dtype=np.float64))


def oracle(rows):
    """A discriminator that is always right: P(prime) is the exact primality of 2*round(x)+1."""
    return utils.is_prime(utils.to_odd_integer(rows)).astype(np.float32)


def run_test(generator, discriminator=None, n_samples=CALIBRATION_SAMPLES, **kwargs):
    return optimus_test.test_models(generator, discriminator, n_samples=n_samples,
                                    seed=kwargs.pop("seed", 0), **kwargs)


# ---------------------------------------------------------------------------------------------
# Calibration of the score


def test_uniform_odd_sampler_scores_one_and_is_not_significant():
    report = run_test(Map(lambda z: z))
    assert report["score"] == pytest.approx(1.0, abs=0.1)
    assert report["distinct_fraction"] == 1.0
    assert report["p_value"] > 0.01


def test_progression_210z_plus_1_scores_about_2_19_and_is_significant():
    report = run_test(Map(lambda z: 105 * z))
    assert report["score"] == pytest.approx(210 / (2 * 48), abs=0.15)
    assert report["p_value"] < 1e-6


def test_constant_generator_scores_near_zero_despite_all_primes():
    report = run_test(Map(lambda z: np.full_like(z, 3.0)), n_samples=1000)  # always 7
    assert report["prime_ratio"] == 1.0
    assert report["distinct_primes"] == 1
    assert report["score"] < 0.05


def test_collapse_onto_a_composite_scores_zero_without_dividing_by_zero():
    report = run_test(Map(lambda z: np.full_like(z, 4.0)), n_samples=100)  # always 9
    assert report["baseline_matched"] == 0.0
    assert report["score"] == 0.0 and report["p_value"] == 1.0
    assert "score" in optimus_test.format_report(report, verbose=3)


def test_original_slope_17_29_scores_one():
    assert run_test(Map(lambda z: 17.29 * z))["score"] == pytest.approx(1.0, abs=0.1)


def test_original_form_keras_generator_is_homogeneous_and_scores_one():
    generator = model_lib.initialize_generator(original=True)
    z = np.array([1, 2, 77, 1000, 123_457, 10**7], dtype=np.float32).reshape(-1, 1)
    slope = np.asarray(generator(z, training=False)).reshape(-1) / z.reshape(-1)
    np.testing.assert_allclose(slope, slope[0], rtol=1e-5)  # G(z) = k*z
    last = generator.layers[-2]  # the output Dense, before abs
    last.kernel.assign(last.kernel * (17.29 / slope[0]))  # the shipped model's k
    report = run_test(generator, n_samples=20_000)
    assert report["score"] == pytest.approx(1.0, abs=0.1)


# ---------------------------------------------------------------------------------------------
# Baselines, significance, confusion, report


def test_baseline_matched_equals_baseline_range_within_one_power_of_two_bin():
    # candidates 2z+1 in [2^21 + 1, 2^21 + 2e5 + 1]: all in [2^21, 2^22)
    report = run_test(Map(lambda z: z), n_samples=10_000, low_latent=2**20,
                      high_latent=2**20 + 10**5)
    assert len(report["bins"]) == 1
    assert report["baseline_matched"] == pytest.approx(report["baseline_range"], rel=1e-12)


def test_baseline_matched_weights_bins_by_output_share():
    report = run_test(Map(lambda z: z), n_samples=10_000)
    shares = [b["share"] for b in report["bins"]]
    assert sum(shares) == pytest.approx(1.0)
    assert report["baseline_matched"] == pytest.approx(
        sum(b["share"] * b["density"] for b in report["bins"]))
    assert report["baseline_matched"] > report["baseline_range"]  # small outputs are denser


def test_confusion_cells_sum_to_n_samples_and_oracle_is_perfect():
    report = run_test(Map(lambda z: z), Map(oracle), n_samples=5000)
    cells = report["confusion"]
    assert sum(cells.values()) == 5000
    assert cells["false_positives"] == cells["false_negatives"] == 0
    assert cells["true_positives"] == report["primes"]
    assert report["balanced_accuracy"] == 1.0


def test_discriminator_always_saying_prime_calls_every_output_positive():
    report = run_test(Map(lambda z: z), Map(lambda x: np.full_like(x, 0.9)), n_samples=5000)
    cells = report["confusion"]
    assert cells["true_positives"] + cells["false_positives"] == 5000
    assert report["balanced_accuracy"] == 0.5


def test_missing_discriminator_skips_confusion():
    report = run_test(Map(lambda z: z), n_samples=100)
    assert report["confusion"] is None and report["balanced_accuracy"] is None
    assert "not given" in optimus_test.format_report(report, verbose=1)


def test_report_is_json_serialisable_at_every_verbosity():
    report = run_test(Map(lambda z: z), Map(oracle), n_samples=1000, verbose=3)
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_verbose_levels_add_confusion_bins_then_samples():
    report = run_test(Map(lambda z: 3 * z), Map(oracle), n_samples=500, verbose=3)
    texts = [optimus_test.format_report(report, verbose=v) for v in range(4)]
    assert "said prime" not in texts[0] and "said prime" in texts[1]
    assert "by magnitude" not in texts[1] and "by magnitude" in texts[2]
    assert "first distinct primes" not in texts[2] and "first distinct primes" in texts[3]
    assert "score" in texts[0] and "p-value" in texts[0] and "lift" in texts[0]
    assert "samples" not in run_test(Map(lambda z: z), n_samples=10, verbose=2)


def test_samples_list_first_candidates_and_primes():
    report = run_test(Map(lambda z: z), n_samples=100, verbose=3)
    samples = report["samples"]
    assert samples["candidates"] == [2 * z + 1 for z in samples["latents"]]
    assert all(utils.is_prime(p) for p in samples["primes"])
    assert len(samples["candidates"]) == optimus_test.SHOWN_SAMPLES


@pytest.mark.parametrize("kwargs", [
    {"n_samples": 0},
    {"n_samples": 11, "low_latent": 1, "high_latent": 10},
    {"low_latent": 5, "high_latent": 4},
    {"low_latent": -1},
    {"high_latent": 2**24 + 1},
    {"n_samples": 10.0},
    {"seed": -1},
    {"verbose": 4},
])
def test_invalid_arguments_raise_one_line_optimus_error(kwargs):
    with pytest.raises(utils.OptimusError) as info:
        optimus_test.test_models(Map(lambda z: z), **kwargs)
    assert "\n" not in str(info.value)


def test_diverging_generator_raises_optimus_error():
    with pytest.raises(utils.OptimusError, match="NaN"):
        run_test(Map(lambda z: np.full_like(z, np.nan)), n_samples=10)


# ---------------------------------------------------------------------------------------------
# Command line: every run starts in a temporary directory, to show it works from anywhere.
# TensorFlow's import costs seconds per run, so all runs start together and are awaited once.


def _save_models(directory: Path) -> None:
    directory.mkdir()
    model_lib.initialize_generator().save(directory / training_utils.GENERATOR_FILE)
    model_lib.initialize_discriminator().save(directory / training_utils.DISCRIMINATOR_FILE)


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Results {name: CompletedProcess-like (returncode, stdout, stderr)} of all CLI runs."""
    root = tmp_path_factory.mktemp("cli")
    fresh, broken, empty = root / "fresh", root / "broken", root / "empty"
    _save_models(fresh)
    _save_models(broken)
    generator_file = broken / training_utils.GENERATOR_FILE
    generator_file.write_bytes(generator_file.read_bytes()[:2000])  # truncated .h5
    empty.mkdir()
    runs = {
        "end_to_end": [f"--checkpoint_dir={fresh}", "--n_samples=200", "--json"],
        "no_models": [f"--checkpoint_dir={empty}"],
        "truncated": [f"--checkpoint_dir={broken}"],
        "too_many_samples": [f"--checkpoint_dir={fresh}", "--n_samples=11", "--low_latent=1",
                             "--high_latent=10"],
        "bad_flag": ["--n_sample=5"],
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    procs = {name: subprocess.Popen([sys.executable, str(REPO_ROOT / "test.py"), *args],
                                    cwd=root, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, args in runs.items()}
    results = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=CLI_TIMEOUT)
        results[name] = subprocess.CompletedProcess(runs[name], proc.returncode, stdout, stderr)
    return results


def _assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_cli_end_to_end_prints_json_report_on_last_line(cli):
    result = cli["end_to_end"]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["n_samples"] == 200
    assert sum(report["confusion"].values()) == 200
    assert 0.0 <= report["prime_ratio"] <= 1.0


def test_cli_without_pretrained_models_exits_2_with_one_line(cli):
    _assert_one_line_error(cli["no_models"], "no pre-trained models in",
                           "run training/train.py first")


def test_cli_truncated_checkpoint_exits_2_naming_the_file(cli):
    _assert_one_line_error(cli["truncated"], training_utils.GENERATOR_FILE)


def test_cli_n_samples_beyond_latent_range_exits_2(cli):
    _assert_one_line_error(cli["too_many_samples"], "n_samples=11")


def test_cli_unknown_flag_exits_2(cli):
    _assert_one_line_error(cli["bad_flag"], "n_sample")
