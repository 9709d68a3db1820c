"""A wider residue encoding: largest_prime 61 and 127 over 3 seeds (the default, 31, is the ablations sweep's default row).

With odd primes up to P, avoiding every one of them scores prod p/(p-1) over chance: 3.27 for 31,
3.80 for 61 and 4.39 for 127, so the score has room again to tell methods apart. Every run is
tested on 100,000 latents in each range, at batches 50 and 100.
Run: python training/sweep.py training/sweeps/encoding.py
"""
SEEDS = (0, 1, 2)               # train.py's --seed of each configuration's runs
COMMON = {"test_samples": 100_000, "test_session_occurrences": 50}
CONFIGURATIONS = {
    "largest_prime 61": {"largest_prime": 61},
    "largest_prime 127": {"largest_prime": 127},
}
