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
from training import checkpoint, measuring, model, registry, sampling, train

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


# -- the streamed sampler ----------------------------------------------------------------------------------

def test_streamed_proposals_follow_the_windows_distribution():
    head = random_head(["--acceptance=window"])
    sampler = head.sampler("sampled", 1, 8)
    candidates, kept = sampler.stream(400_000, np.random.default_rng(0))
    assert kept.all() and candidates.size > 20_000  # only the kept are returned
    w = sampler.windows(np.arange(1, 9))
    expected = w.weights.reshape(-1) / w.weights.sum()
    values, counts = np.unique(candidates, return_counts=True)
    observed = dict(zip(values.tolist(), counts / counts.sum()))
    for c, q in zip(w.candidates.reshape(-1).tolist(), expected):
        assert abs(observed.get(c, 0.0) - q) < 5 * math.sqrt(q / candidates.size) + 1e-4, c


def test_the_stream_of_a_head_without_acceptance_draws_its_windows():
    head = random_head(["--acceptance=none"])
    sampler = head.sampler("sampled", 1, 4)
    candidates, kept = sampler.stream(40_000, np.random.default_rng(0))
    assert kept.all() and candidates.size == 40_000
    w = sampler.windows(np.arange(1, 5))
    frequencies = {c: n / candidates.size for c, n in zip(*np.unique(candidates, return_counts=True))}
    for c, q in zip(w.candidates.reshape(-1).tolist(), w.weights.reshape(-1) / 4):
        assert abs(frequencies.get(c, 0.0) - q) < 0.01


@pytest.mark.parametrize("argv", [[], ["--generator_activation=sin"], ["--generator_activation=snake"],
                                  ["--generator_layers=0"], ["--largest_prime=61"]])
def test_the_folded_scorer_gives_the_networks_scores(argv):
    head, other = random_head(argv), random_head(argv, seed=1)
    z = np.random.default_rng(2).integers(1, 2**40, 500)
    k = np.random.default_rng(3).integers(0, head.offsets, 500)
    folded = sampling.FoldedScorer(head)
    expected = head.logits(z)[np.arange(500), k]
    np.testing.assert_allclose(folded(folded.latent_residues(z), k), expected, rtol=1e-4, atol=1e-4)
    wrong = sampling.FoldedScorer(other)  # the negative control: another head's weights
    assert np.abs(wrong(wrong.latent_residues(z), k) - expected).max() > 0.01


def test_a_folding_generator_draws_the_same_primes_from_its_weight_file_alone(tmp_path):
    """load_generator reads a folding head's scorer from its .h5 with h5py (no TensorFlow in
    test.py --primes): the same primes as the Keras head. Controls: heads that do not fold, or
    that stream whole windows (no acceptance per candidate), come back as the Keras network; a
    file whose weights are not its architecture's, and a checkpoint without its discriminator,
    are refused."""
    def saved(head):
        checkpoint.save_network(head.model, tmp_path / checkpoint.GENERATOR_FILE, head.architecture)
        return head
    d = registry.build(registry.discriminator_architecture(train.parse_config([])), "discriminator")
    checkpoint.save_network(d.model, tmp_path / checkpoint.DISCRIMINATOR_FILE, d.architecture)
    head = saved(random_head(["--acceptance=window"]))
    loaded = checkpoint.load_generator(tmp_path)
    assert isinstance(loaded, sampling.FoldedHead)
    lo, hi = optimus_test.prime_range(bits=64)
    assert sampling.draw_primes(loaded, 200, lo, hi, seed=4)[0] == sampling.draw_primes(head, 200, lo, hi, seed=4)[0]
    for argv in (["--generator_input=latent", "--acceptance=none"], ["--acceptance=none"]):
        other = saved(random_head(argv))
        assert type(checkpoint.load_generator(tmp_path)) is type(other)
        assert len(sampling.draw_primes(checkpoint.load_generator(tmp_path), 5, lo, hi, seed=4)[0]) == 5
    narrow = random_head(["--acceptance=window", "--generator_units=32"])
    checkpoint.save_network(narrow.model, tmp_path / checkpoint.GENERATOR_FILE, head.architecture)
    with pytest.raises(utils.OptimusError, match="not a weight file of a known generator.*shapes"):
        checkpoint.load_generator(tmp_path)
    saved(head)
    (tmp_path / checkpoint.DISCRIMINATOR_FILE).unlink()
    with pytest.raises(utils.OptimusError, match="Optimus_Discriminator.h5: missing checkpoint file"):
        checkpoint.load_generator(tmp_path)


def test_a_stream_beyond_int64_keeps_its_latents_uniform_and_its_scores_weighted():
    """Over a range of 2**90 latents the stream draws each latent's residues first and the rest
    only for the kept: the kept candidates lie in the range, spread over all of it, and their
    classes mod 3 and 5 follow exp(score) as the direct draw does on a small range."""
    head = random_head(["--acceptance=window"])
    low, high = 2**100, 2**100 + 2**90
    big = head.sampler("sampled", low, high)
    candidates, kept = big.stream(400_000, np.random.default_rng(0))
    assert kept.all() and candidates.size > 20_000 and big.folded is not None
    z = (candidates - 1) // 2 // head.offsets
    assert all(low <= int(v) <= high for v in z)
    eighths = np.bincount([(int(v) - low) >> 87 for v in z], minlength=8) / len(z)
    assert np.abs(eighths - 1 / 8).max() < 0.01

    def classes(numbers):  # the shares of the classes mod 3, then mod 5
        return np.concatenate([np.bincount([int(v) % p for v in numbers], minlength=p) / len(numbers)
                               for p in (3, 5)])
    direct, _ = head.sampler("sampled", 1, 2**40).stream(400_000, np.random.default_rng(1))
    assert np.abs(classes(candidates) - classes(direct)).max() < 0.02
    rng = np.random.default_rng(2)  # the control: unweighted candidates differ from the weighted
    unweighted = 2 * (head.offsets * rng.integers(1, 2**40, 100_000) + rng.integers(0, head.offsets, 100_000)) + 1
    assert np.abs(classes(unweighted) - classes(direct)).max() > 0.025


# -- drawing primes ---------------------------------------------------------------------------------------

def test_draw_primes_gives_primes_of_the_requested_size_and_repeats_with_its_seed():
    head = random_head(["--acceptance=window"])
    lo, hi = optimus_test.prime_range(bits=64)
    primes, stats = sampling.draw_primes(head, 300, lo, hi, seed=4)
    assert len(primes) == len(set(primes)) == 300
    assert all(lo <= p <= hi and sympy.isprime(p) for p in primes)
    assert stats["tested"] >= 300 and stats["proposals"] >= stats["tested"]
    again, _ = sampling.draw_primes(head, 300, lo, hi, seed=4)
    other, _ = sampling.draw_primes(head, 300, lo, hi, seed=5)
    assert again == primes and other != primes


def test_a_range_without_a_prime_is_refused_after_its_budget_and_one_with_a_prime_is_not():
    head = random_head(["--acceptance=window"])
    with pytest.raises(utils.OptimusError, match=r"no prime in \[24, 28\]"):
        sampling.draw_primes(head, 1, 24, 28, seed=0)  # 25 and 27 only
    assert sampling.draw_primes(head, 3, 24, 30, seed=0)[0] == [29, 29, 29]


def test_draw_primes_in_a_narrow_range_stays_inside_it():
    head = random_head(["--acceptance=window"])
    primes, _ = sampling.draw_primes(head, 200, 1000, 1100, seed=0)
    assert set(primes) <= {p for p in sympy.primerange(1000, 1101)}
    assert len(set(primes)) > 10


@pytest.mark.parametrize("acceptance, lo, hi", [
    ("window", *optimus_test.prime_range(bits=64)), ("none", *optimus_test.prime_range(bits=64)),
    ("window", 10**12, 10**15), ("window", 1000, 1100)])
def test_fewer_primes_of_a_seed_are_a_prefix_of_more(acceptance, lo, hi):
    head = random_head([f"--acceptance={acceptance}"])
    more, stats = sampling.draw_primes(head, 1000, lo, hi, seed=5)
    assert stats["proposals"] > 4 * sampling.PRIME_CHUNK  # the draw spans several network calls
    for count in (1, 100, 999):
        fewer, _ = sampling.draw_primes(head, count, lo, hi, seed=5)
        assert fewer == more[:count], count
    other, _ = sampling.draw_primes(head, 100, lo, hi, seed=6)  # the control: another seed's stream
    assert other != more[:100]


def test_the_chunk_schedule_does_not_depend_on_the_count():
    sizes = [size for size, _ in zip(sampling.chunk_sizes(), range(12))]
    assert sizes[0] == sampling.PRIME_CHUNK and sizes[-1] == sampling.MAX_PRIME_CHUNK
    assert all(b in (a, 2 * a) for a, b in zip(sizes, sizes[1:]))


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_a_line_rewritten_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sampling, "PROGRESS_EVERY", 0.0)  # every update shown, however fast
    head = random_head(["--acceptance=window"])
    lo, hi = optimus_test.prime_range(bits=128)
    stream = _Terminal()
    progress = sampling.Progress(stream)
    primes, _ = sampling.draw_primes(head, 20, lo, hi, seed=0, progress=progress)
    assert primes == sampling.draw_primes(head, 20, lo, hi, seed=0)[0]  # progress draws nothing
    sampling.primes_distribution(head, lo, hi, seed=0, progress=progress)
    progress.clear()
    text = stream.getvalue()
    assert "drawing primes" in text and "distribution" in text and "\n" not in text
    assert text.startswith("\r") and text.endswith("\r") and text.rstrip("\r").endswith(" ")


def test_progress_writes_nothing_where_stderr_is_not_a_terminal():
    stream = io.StringIO()
    progress = sampling.Progress(stream)
    sampling.draw_primes(random_head(["--acceptance=window"]), 5, 1000, 1100, seed=0, progress=progress)
    progress.clear()
    assert not progress.on and stream.getvalue() == ""


def test_the_distribution_of_a_requested_size_is_estimated_from_its_windows():
    head = random_head(["--acceptance=window"])
    lo, hi = optimus_test.prime_range(bits=512)
    measures = sampling.primes_distribution(head, lo, hi, seed=0)
    assert not measures["exact"] and measures["reference_primes"] > 50
    assert 0 <= measures["tv"] < 1 and measures["tv_sd"] >= 0


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


def test_the_real_head_is_refused_beyond_its_float32_outputs(run_main, real_head_checkpoint):
    status, out, err = run_main([f"--checkpoint_dir={real_head_checkpoint}", "--primes=5", "--bits=64"])
    assert status == 2 and out == "" and "float32" in error_line(err)


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
def test_the_shipped_pair_prints_100_distinct_primes_of_the_size_asked(primes_cli, bits):
    (out, err), status = primes_cli[bits]
    assert status == 0, err
    primes = [int(line) for line in out.split()]
    assert len(primes) == len(set(primes)) == 100
    assert all(p.bit_length() == bits and sympy.isprime(p) for p in primes)
    assert "candidates tested per prime" in err and "primes/s" in err
    assert "distribution" not in err and "\r" not in err  # no estimate unless asked, no progress on a pipe


@pytest.mark.slow
def test_the_command_lines_primes_of_a_seed_are_a_prefix_of_more_and_estimated_on_request(primes_cli):
    (out, err), status = primes_cli["more"]
    assert status == 0, err
    more = [int(line) for line in out.split()]
    fewer = [int(line) for line in primes_cli[64][0][0].split()]
    assert len(more) == 3000 and more[:100] == fewer
    assert "distribution over 2000 sampled windows" in err and "tv" in err and "\r" not in err
