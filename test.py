"""Test a checkpoint: its score in the training range and beyond, or draw random primes.

Usage, from any directory (``--help`` lists every flag):
    python test.py [--checkpoint_dir=DIR] [--n_samples=N] [--json] [--candidates=FILE] ...
    python test.py --calibration
    python test.py --lengths [--checkpoint_dir=DIR] [--json]
    python test.py --primes=N (--bits=B [--top_two_bits] | --range=A:B) [--seed=S] [--distribution]

The measures are ``training/measuring.py``'s. The training range defaults to the checkpoint's
own, the range beyond to (B, min(10 B, 2**24)]. A user error is one line ``error: ...``, exit 2.
"""
import json
import math
import signal
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # the imports below work from any directory

import utils  # noqa: E402
from training import oracle, rules  # noqa: E402
from training import measuring  # noqa: E402  (no TensorFlow: its defaults are the flags')
from training.measuring import (BEYOND_FACTOR, DISTRIBUTION_WINDOWS, TRAINING_RANGE,  # noqa: E402
                                VERBOSE, measure_cell)

DEFAULT_CHECKPOINT_DIR = REPO_ROOT / "training"
CSV_HEADER = "latent,candidate,is_prime"
MIN_BITS, MAX_BITS = 8, oracle.MAX_PRIME_BITS  # --bits: the sizes a user may ask for

USAGE = ("usage: python test.py [--name=value ...]   (report on a checkpoint, --calibration, or "
         "--primes=N with --bits=B or --range=A:B)")
FLAGS = {  # name: (default, meaning)
    "checkpoint_dir": (str(DEFAULT_CHECKPOINT_DIR), "the checkpoint to test (default: the shipped pair)"),
    "n_samples": (measuring.N_SAMPLES, "latents drawn in each range"),
    "low_latent": (0, "first latent of the training range (0: the checkpoint's own)"),
    "high_latent": (0, "last latent of the training range (0: the checkpoint's own)"),
    "beyond_latent": (0, f"last latent of the range beyond it (0: {BEYOND_FACTOR} times its end, "
                         "at most 2**24)"),
    "seed": (measuring.SEED, "seeds the latents and the sampled offsets: the same seed, the same report. "
                             "--primes without it draws every bit from the OS (os.urandom), fresh at "
                             "each run; with it, from numpy's PCG64: reproducible, NOT for secrets"),
    "verbose": (VERBOSE, "0 headline, 1 adds the confusion tables, 2 the magnitude bins, 3 samples"),
    "sampling": (measuring.SAMPLING, '"sampled" offsets (a random prime generator) or "greedy" (the likeliest)'),
    "json": (False, "print the report as one JSON object"),
    "candidates": ("", "write every kept latent as CSV latent,candidate,is_prime to this file "
                       '("-": stdout, the report then on stderr)'),
    "calibration": (False, "report generators whose scores and distributions are known instead"),
    "lengths": (False, "report the length curve instead: the prime enrichment of the discriminator's and "
                       "the generator's top 30% on uniform odd numbers of 24 to 4096 binary digits"),
    "primes": (0, "print this many random primes, one per line as found (with --bits or --range): "
                  "uniform over the primes of the range; the generator only speeds them up"),
    "bits": (0, f"--primes of this many binary digits, {MIN_BITS} to {MAX_BITS}"),
    "top_two_bits": (False, "--bits: both top bits set, so that two such primes make a modulus of "
                            "exactly 2B bits (as OpenSSL's do)"),
    "range": ("", "--primes in [A, B], given as A:B"),
    "distribution": (False, f"--primes also measures the distribution of what it prints over "
                            f"{DISTRIBUTION_WINDOWS} sampled blocks of odd integers, on stderr "
                            "(minutes at 4096 bits)"),
}
DEFAULTS = {name: default for name, (default, _) in FLAGS.items()}
MEANINGS = {name: meaning for name, (_, meaning) in FLAGS.items()}

# TensorFlow is imported only when a network is loaded
from training import calibration, checkpoint, lengths, primes, sampling  # noqa: E402

BITS_RULE = rules.Rule(lambda v: MIN_BITS <= v <= MAX_BITS, f"an integer in [{MIN_BITS}, {MAX_BITS}]")
RULES = {**measuring.RULES,
         "primes": rules.at_least(0),
         "bits": rules.Rule(lambda v: v == 0 or BITS_RULE.test(v), BITS_RULE.allowed)}  # 0: not given


# ---------------------------------------------------------------------------------------------
# Output: the candidates, JSON, the lines of --primes


def write_candidates(path: str, samples: list, stream=None) -> None:
    """Write every (latent, candidate, is_prime) of ``samples`` as CSV to ``path``.

    path "-" writes to ``stream`` (stdout); a file is replaced in one step, never left half written.
    """
    lines = [CSV_HEADER]
    for z, candidates in samples:
        primes = oracle.is_prime(candidates)
        lines += [f"{a},{b},{int(c)}" for a, b, c in zip(z.tolist(), candidates.tolist(), primes)]
    text = "\n".join(lines) + "\n"
    if path == "-":
        (stream or sys.stdout).write(text)
        return
    if Path(path).name in checkpoint.CHECKPOINT_NAMES and Path(path).exists():
        raise utils.OptimusError(f"{path}: a checkpoint's own file; write the candidates elsewhere")
    try:
        checkpoint.write_atomic(Path(path), text.encode())
    except OSError as err:
        raise utils.OptimusError(f"{path}: cannot write the candidates ({err.strerror or err})")


def json_text(value) -> str:
    """``value`` as strict JSON: a NaN or infinite float (a measure of one latent, say) is null."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(item) for k, item in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(item) for item in v]
        return v
    return json.dumps(clean(value), allow_nan=False)


def format_primes_report(stats: dict, lo: int, hi: int, seconds: float) -> str:
    """The stderr line of --primes on what the primes cost and where their randomness came from."""
    n = max(stats["primes"], 1)
    size = (f"{hi.bit_length()} bits" if lo == 2 ** (hi.bit_length() - 1) and hi == 2 ** hi.bit_length() - 1
            else f"[{lo}, {hi}]")
    sieve = " ".join(map(str, stats["sieve"])) or "none"
    return (f"{stats['primes']} primes of {size} in {seconds:.2f} s; {stats['tested'] / n:.1f} "
            f"candidates tested per prime (oracle calls), {stats['proposals'] / n:.1f} proposals; "
            f"sieve learned from the generator: {sieve}; random bits: {stats['source']}")


def format_distribution_line(measures: dict | None) -> str:
    """The stderr line of --primes --distribution: the distribution of the primes."""
    if measures is None:
        return "distribution: n/a (this generator has no candidate windows)"
    return (f"distribution over {measures['windows']} {'' if measures['exact'] else 'sampled '}windows "
            f"({measures['reference_primes']} "
            f"primes): tv {measure_cell(measures, 'tv', '.3f')}, entropy deficit "
            f"{measure_cell(measures, 'entropy_deficit_bits', '.3f')} bits, residue tv "
            f"{measure_cell(measures, 'residue_tv', '.3f')} (a uniform sampler's: "
            f"{measures['residue_tv_floor']:.3f}), coverage {measure_cell(measures, 'coverage', '.3f')}")


# ---------------------------------------------------------------------------------------------
# Command line


def _training_range(config: dict) -> tuple:
    """The latents to test as in range: given, else the checkpoint's own, else TRAINING_RANGE;
    checked here, with the range beyond (``measuring.check_ranges``)."""
    if config["low_latent"] or config["high_latent"]:
        low, high = config["low_latent"] or TRAINING_RANGE[0], config["high_latent"] or TRAINING_RANGE[1]
    else:
        trained = checkpoint.read_state(config["checkpoint_dir"]).get("config", {})
        low, high = (rules.check(f"{checkpoint.STATE_FILE}'s {name}", trained.get(name, default), 0,
                                 measuring.RULES[name])
                     for name, default in zip(("low_latent", "high_latent"), TRAINING_RANGE))
    measuring.check_ranges(config["n_samples"], low, high, config["beyond_latent"])
    return low, high


def prime_range(bits: int = 0, text: str = "", top_two_bits: bool = False) -> tuple:
    """[lo, hi] of the primes asked for: ``bits`` binary digits (the top two set with
    ``top_two_bits``), or the range "A:B" (decimal)."""
    if bits and text:
        raise utils.OptimusError("--primes takes one of --bits=B or --range=A:B, not both")
    if not bits and not text:
        raise utils.OptimusError("--primes needs one of --bits=B or --range=A:B")
    if top_two_bits and not bits:
        raise utils.OptimusError("--top_two_bits is for --bits=B; leave it out with --range")
    if bits:
        return 2 ** (bits - 1) + top_two_bits * 2 ** (bits - 2), 2**bits - 1
    parts = text.replace(" ", "").split(":")
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise utils.OptimusError(f"--range={text[:40]}: expected A:B, two decimal integers")
    if max(map(len, parts)) > len(str(2**MAX_BITS)):  # also below Python's limit on parsing digits
        raise utils.OptimusError(f"--range: need 3 <= A <= B < 2**{MAX_BITS}")
    lo, hi = int(parts[0]), int(parts[1])
    if not 3 <= lo <= hi < 2**MAX_BITS:
        raise utils.OptimusError(f"--range={text}: need 3 <= A <= B < 2**{MAX_BITS}")
    if hi < oracle.ODD_SIEVE_LIMIT and not oracle.odd_primes_between(lo, hi).size:
        raise utils.OptimusError(f"--range={text}: no odd prime lies in [{lo}, {hi}]")
    return lo, hi


def _print_primes(config: dict, seed: int | None) -> int:
    """--primes=N: N primes on stdout, one per line, each batch written as soon as it is found, so
    that a closed pipe or Ctrl-C stops the run at once and memory stays bounded whatever N. What they
    cost on stderr, and with --distribution the distribution of what is printed. seed: None draws
    from the operating system."""
    if not config["primes"]:
        raise utils.OptimusError("--bits, --range, --top_two_bits and --distribution are for --primes=N; give N")
    lo, hi = prime_range(config["bits"], config["range"], config["top_two_bits"])
    if config["json"] or config["candidates"]:
        raise utils.OptimusError("--primes prints primes on stdout: leave out --json and --candidates")
    start = time.perf_counter()
    sieve, _ = primes.learned_sieve(checkpoint.load_generator(config["checkpoint_dir"]), lo, hi)
    random = primes.source(seed)
    stats, left = {"sieve": sieve, "source": random.name}, config["primes"]
    try:
        for found in primes.stream(sieve, lo, hi, random, stats):
            found = found[:left]
            sys.stdout.write("".join(f"{p}\n" for p in found))
            sys.stdout.flush()
            left -= len(found)
            if not left:
                break
    except KeyboardInterrupt:
        print(f"stopped by Ctrl-C after {config['primes'] - left} primes", file=sys.stderr, flush=True)
        return utils.CTRL_C_EXIT
    stats["primes"] = config["primes"]
    print(format_primes_report(stats, lo, hi, time.perf_counter() - start), file=sys.stderr, flush=True)
    if config["distribution"]:
        progress = sampling.Progress(sys.stderr)
        try:
            measures = primes.distribution(sieve, lo, hi, config["seed"], progress)
        finally:
            progress.clear()
        print(format_distribution_line(measures), file=sys.stderr, flush=True)
    return 0


def _print_lengths(config: dict) -> int:
    """--lengths: the checkpoint's length curves beside the calibration rows (and the fold
    reference for a discriminator that reads digits); --json prints them as one object."""
    generator, discriminator = checkpoint.load_networks(config["checkpoint_dir"])
    curves = lengths.checkpoint_curves(generator, discriminator, seed=config["seed"])
    print(json_text(curves) if config["json"] else lengths.format_curve(curves), flush=True)
    return 0


def main(argv: list | None = None) -> int:
    """Run the command line; returns the exit status (2 on an OptimusError)."""
    argv = sys.argv[1:] if argv is None else argv
    if rules.wants_help(argv):
        return rules.print_help(USAGE, DEFAULTS, MEANINGS)
    try:
        config = rules.parse_overrides(argv, DEFAULTS, RULES)
        if config["json"] and config["candidates"] == "-":
            raise utils.OptimusError("--json --candidates=-: both would write to stdout; give "
                                     "--candidates a file name")
        if config["calibration"]:
            text = calibration.format_table(calibration.calibration(config["n_samples"], config["seed"]))
            print(text, flush=True)
            return 0
        if config["lengths"]:
            return _print_lengths(config)
        if config["primes"] or config["bits"] or config["range"] or config["distribution"] or config["top_two_bits"]:
            return _print_primes(config, config["seed"] if "seed" in rules.given_names(argv) else None)
        generator, discriminator = checkpoint.load_networks(config["checkpoint_dir"])
        low, high = _training_range(config)
        samples = []
        result = measuring.evaluate(generator, discriminator, config["n_samples"], low, high, config["seed"],
                          config["beyond_latent"], config["verbose"], samples, config["sampling"])
        if config["candidates"]:
            write_candidates(config["candidates"], samples)
        report = json_text(result) if config["json"] else measuring.format_report(result, config["verbose"])
        print(report, file=sys.stderr if config["candidates"] == "-" else sys.stdout)
        sys.stdout.flush()
    except utils.OptimusError as err:
        utils.print_error(err)
        return 2
    except OSError as err:  # writing the output: a closed pipe, a full device
        return utils.output_failed(err)
    except KeyboardInterrupt:
        print("stopped by Ctrl-C", file=sys.stderr, flush=True)
        return utils.CTRL_C_EXIT
    return 0


if __name__ == "__main__":
    # a Ctrl-C (SIGINT) stops it even when a shell started it in the background, where SIGINT starts
    # ignored: as train.py's, whose utils.watch_ctrl_c does the same
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
