"""Primes of any requested size: exact integer features, the samplers at any size, test.py --primes."""
import importlib.util
import math
import os
import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy

import utils
from training import oracle
from support import error_line, whole_state
from training import checkpoint, measuring, model, primes, registry, sampling, train

REPO_ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("optimus_test", REPO_ROOT / "test.py")
optimus_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(optimus_test)
CLI_TIMEOUT = 300               # seconds for one command-line run


def random_head(argv=(), seed: int = 0, scale: float = 0.15):
    """An offset head of the default architecture (with ``argv``) and random, non-trivial weights."""
    config = train.parse_config(list(argv))
    head = registry.build(registry.generator_architecture(config), "generator")
    rng = np.random.default_rng(seed)
    for w in head.model.trainable_weights:
        w.assign(rng.normal(0, scale, w.shape).astype(np.float32))
    return head


# -- exact integer features ----------------------------------------------------------------------------

def test_integer_features_are_the_layers_own_below_2_53():
    head = random_head()
    z = np.random.default_rng(1).integers(1, 2**40, 3000)
    keras_logits = np.asarray(head.policy(z.astype(np.float64).reshape(-1, 1), training=False))
    np.testing.assert_array_equal(head.logits(z), keras_logits.astype(np.float64))
    features = head.encoding.window_features(head.architecture, z, head.offsets)
    np.testing.assert_array_equal(features, np.asarray(head.encode(z.astype(np.float64).reshape(-1, 1))))


@pytest.mark.parametrize("bits", [64, 512, 2048])
def test_residue_features_of_huge_candidates_follow_pythons_modulo(bits):
    head = random_head()
    rng = np.random.default_rng(bits)
    z = utils.random_big_integers(2**(bits - 6), 2**(bits - 5), 50, rng)
    features = head.encoding.window_features(head.architecture, z, head.offsets)
    primes = oracle.odd_primes(31)
    tables = model.residue_tables(primes)[0]
    for i, zi in enumerate(z):
        for k in range(head.offsets):
            n = 2 * (head.offsets * int(zi) + k) + 1
            expected = np.concatenate([t[n % p] for p, t in zip(primes, tables)])
            np.testing.assert_array_equal(features[i, k], expected)
    candidates = head.candidates(z)
    assert candidates.dtype == object and int(candidates[3, 5]) == 2 * (16 * int(z[3]) + 5) + 1
    labels = oracle.is_prime(candidates[:5])
    assert labels.tolist() == [[sympy.isprime(int(c)) for c in row] for row in candidates[:5]]


def test_a_candidates_own_score_is_its_windows_logit():
    head = random_head()
    z = np.array([3, 17, 2**70 + 5, 123456789], dtype=object)
    k = np.array([0, 15, 7, 3])
    window = head.logits(z)
    np.testing.assert_allclose(head.candidate_scores(z, k), window[np.arange(4), k], rtol=1e-6, atol=1e-7)
    assert int(head.candidates(z, k)[2]) == 2 * (16 * (2**70 + 5) + 7) + 1


def test_bits_inputs_refuse_numbers_beyond_their_digits():
    head = random_head(["--generator_input=bits", "--discriminator_input=bits"])
    head.logits(np.array([2**30]))
    with pytest.raises(utils.OptimusError, match="2\\*\\*38"):
        head.logits(np.array([2**40]))


# -- the folded scorer ----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [*([f"--generator_activation={name}"] for name in sampling.NUMPY_ACTIVATIONS),
                                  ["--generator_layers=0"], ["--largest_prime=61"]])
def test_the_folded_scorer_gives_the_networks_scores(argv):
    """For every activation of the table (relu is the default's) the numpy scorer is the network."""
    head, other = random_head(argv), random_head(argv, seed=1)
    z = np.random.default_rng(2).integers(1, 2**40, 500)
    k = np.random.default_rng(3).integers(0, head.offsets, 500)
    folded = sampling.FoldedScorer(head)
    expected = head.logits(z)[np.arange(500), k]
    np.testing.assert_allclose(folded(folded.latent_residues(z), k), expected, rtol=1e-4, atol=1e-4)
    wrong = sampling.FoldedScorer(other)  # the negative control: another head's weights
    assert np.abs(wrong(wrong.latent_residues(z), k) - expected).max() > 0.01


def test_a_folding_generator_reads_the_same_sieve_from_its_weight_file_alone(tmp_path):
    """load_generator reads a folding head's scorer from its .h5 with h5py (no TensorFlow in
    test.py --primes): the same window scores and sieve as the Keras head. Controls: a head that
    does not fold comes back as the Keras network; a file whose weights are not its architecture's,
    and a checkpoint without its discriminator, are refused."""
    def saved(head):
        checkpoint.save_network(head.model, tmp_path / checkpoint.GENERATOR_FILE, head.architecture)
        return head
    d = registry.build(registry.discriminator_architecture(train.parse_config([])), "discriminator")
    checkpoint.save_network(d.model, tmp_path / checkpoint.DISCRIMINATOR_FILE, d.architecture)
    lo, hi = optimus_test.prime_range(bits=64)
    for acceptance in ("window", "none"):
        head = saved(random_head([f"--acceptance={acceptance}"]))
        loaded = checkpoint.load_generator(tmp_path)
        assert isinstance(loaded, sampling.FoldedHead)
        z = np.random.default_rng(0).integers(2**50, 2**55, 300)
        np.testing.assert_allclose(loaded.logits(z), head.logits(z), rtol=1e-4, atol=1e-4)
        (sieve, ratios), (keras_sieve, keras_ratios) = (primes.learned_sieve(g, lo, hi) for g in (loaded, head))
        assert sieve == keras_sieve and ratios == pytest.approx(keras_ratios, rel=1e-3)
    other = saved(random_head(["--generator_input=latent", "--acceptance=none"]))
    assert type(checkpoint.load_generator(tmp_path)) is type(other)
    narrow = random_head(["--acceptance=window", "--generator_units=32"])
    checkpoint.save_network(narrow.model, tmp_path / checkpoint.GENERATOR_FILE, head.architecture)
    with pytest.raises(utils.OptimusError, match="not a weight file of a known generator.*shapes"):
        checkpoint.load_generator(tmp_path)
    saved(head)
    (tmp_path / checkpoint.DISCRIMINATOR_FILE).unlink()
    with pytest.raises(utils.OptimusError, match="Optimus_Discriminator.h5: missing checkpoint file"):
        checkpoint.load_generator(tmp_path)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_a_line_rewritten_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sampling, "PROGRESS_EVERY", 0.0)  # every update shown, however fast
    lo, hi = optimus_test.prime_range(bits=128)
    stream = _Terminal()
    progress = sampling.Progress(stream)
    measures = primes.distribution((3, 5), lo, hi, seed=0, progress=progress)
    assert measures == primes.distribution((3, 5), lo, hi, seed=0)  # progress draws nothing
    progress.clear()
    text = stream.getvalue()
    assert "distribution" in text and "\n" not in text
    assert text.startswith("\r") and text.endswith("\r") and text.rstrip("\r").endswith(" ")


def test_progress_writes_nothing_where_stderr_is_not_a_terminal():
    stream = io.StringIO()
    progress = sampling.Progress(stream)
    primes.distribution((3,), 1000, 1100, seed=0, progress=progress)
    progress.clear()
    assert not progress.on and stream.getvalue() == ""


def test_the_report_and_its_chance_work_beyond_2_64():
    head = random_head(["--acceptance=none"])
    for w in head.model.trainable_weights:
        w.assign(np.zeros(w.shape, np.float32))  # uniform over each window: chance's rate
    low = 10**30
    report = measuring.test_models(head, None, 3000, low, 2 * low, seed=0)
    assert report["min_candidate"] > 2**64
    assert abs(report["score"] - 1.0) <= 3 * report["score_sd"]
    assert report["chance"] == pytest.approx(2 / math.log(3 * 32 * low), rel=0.02)
    assert report["distribution"]["tv"] < 0.05  # uniform over each window


def test_local_density_meets_the_prime_number_theorem_past_its_grid():
    below, beyond = 2**62 - 2**40 + 1, 2**62 + 2**40 + 1
    density = oracle.local_density(np.array([below, beyond], dtype=object))
    assert density[1] == pytest.approx(2 / math.log(beyond))
    assert density[0] == pytest.approx(density[1], rel=0.01)


# -- the command line: bad requests in-process, real ones as processes ----------------------------

@pytest.fixture
def run_main(capsys):
    def run(argv):
        status = optimus_test.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return status, out, err
    return run


@pytest.fixture(scope="module")
def real_head_checkpoint(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("real")
    config = train.parse_config(["--generator_head=real", "--discriminator=seed", "--discriminator_input=scalar"])
    trainer = registry.build_trainer(config)
    checkpoint.save(directory, trainer, whole_state(config, 0))
    return directory


@pytest.mark.parametrize("argv, named", [
    (["--primes=10", "--bits=7"], "bits"),
    (["--primes=10", "--bits=4097"], "bits"),
    (["--primes=10", "--range=3:99", "--top_two_bits"], "--top_two_bits"),
    (["--primes=0", "--bits=64"], "--primes"),
    (["--primes=-3", "--bits=64"], "primes"),
    (["--primes=10"], "--bits"),
    (["--primes=10", "--bits=64", "--range=3:99"], "--bits"),
    (["--primes=10", "--range=24:28"], "no odd prime"),
    (["--primes=10", "--range=50:40"], "--range"),
    (["--primes=10", "--range=abc"], "--range"),
    (["--primes=10", "--bits=64", "--json"], "--json"),
])
def test_a_bad_request_for_primes_is_one_line_and_exit_2(argv, named, run_main, tmp_path):
    status, out, err = run_main([f"--checkpoint_dir={tmp_path}", *argv])
    assert status == 2 and out == "" and named in error_line(err)


def test_distribution_is_a_flag_of_primes_listed_in_help(run_main, tmp_path):
    status, out, _ = run_main(["--help"])
    assert status == 0 and "--distribution = False" in out
    status, out, err = run_main([f"--checkpoint_dir={tmp_path}", "--distribution"])
    assert status == 2 and out == "" and "--primes" in error_line(err)


def test_a_one_latent_range_reports_without_a_warning(run_main):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status, out, err = run_main(["--low_latent=5", "--high_latent=5", "--n_samples=1", "--json"])
    assert status == 0, err
    report = optimus_test.json.loads(out)
    assert report["in_range"]["latents"] == 1 and report["in_range"]["discriminator_on_uniform"] is None


def test_a_real_head_learned_no_sieve_and_its_primes_come_from_the_oracle_alone(run_main, real_head_checkpoint):
    status, out, err = run_main([f"--checkpoint_dir={real_head_checkpoint}", "--primes=5", "--bits=64",
                                 "--seed=1"])
    assert status == 0 and len(out.split()) == 5 and "sieve learned from the generator: none" in err


@pytest.fixture(scope="module")
def primes_cli(tmp_path_factory):
    """{name: ((stdout, stderr), status)} of test.py --primes on the shipped pair, started together:
    100 primes of 64 and of 1024 bits, and 3000 of 64 bits of the same seed with --distribution."""
    requests = {64: ["--primes=100", "--bits=64"], 1024: ["--primes=100", "--bits=1024"],
                "more": ["--primes=3000", "--bits=64", "--distribution"]}
    procs = {name: subprocess.Popen([sys.executable, str(REPO_ROOT / "test.py"), *argv, "--seed=3"],
                                    cwd=tmp_path_factory.mktemp("cli"), env=dict(os.environ),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, argv in requests.items()}
    return {name: (proc.communicate(timeout=CLI_TIMEOUT), proc.returncode) for name, proc in procs.items()}


@pytest.mark.slow
@pytest.mark.parametrize("bits", [64, 1024])
def test_the_shipped_pair_prints_100_primes_of_the_size_asked(primes_cli, bits):
    (out, err), status = primes_cli[bits]
    assert status == 0, err
    primes = [int(line) for line in out.split()]
    assert len(primes) == len(set(primes)) == 100  # repeats allowed, but this unlikely at 64 bits
    assert all(p.bit_length() == bits and sympy.isprime(p) for p in primes)
    assert "candidates tested per prime" in err and "sieve learned from the generator: 3 5 7" in err
    assert "distribution" not in err and "\r" not in err  # no estimate unless asked, no progress on a pipe


@pytest.mark.slow
def test_the_command_lines_primes_of_a_seed_are_a_prefix_of_more_and_estimated_on_request(primes_cli):
    (out, err), status = primes_cli["more"]
    assert status == 0, err
    more = [int(line) for line in out.split()]
    fewer = [int(line) for line in primes_cli[64][0][0].split()]
    assert len(more) == 3000 and more[:100] == fewer
    assert "distribution over 2000 sampled windows" in err and "tv" in err and "\r" not in err
