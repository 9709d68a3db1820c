"""A wider residue encoding: largest_prime 61 and 127, 3 seeds each (31 is the ablations' default).

Avoiding every odd prime up to P scores prod p/(p-1) over chance: 3.27 for 31, 3.80 for 61 and
4.39 for 127, so the score has room again to tell methods apart. Every run is tested on 100,000
latents in each range, at batches 50 and 100. Run: python training/sweep.py training/sweeps/encoding.py
"""
SEEDS = (0, 1, 2)               # train.py's --seed of each configuration's runs
COMMON = {"test_samples": 100_000, "test_session_occurrences": 50}
CONFIGURATIONS = {
    "largest_prime 61": {"largest_prime": 61},
    "largest_prime 127": {"largest_prime": 127},
    # 61 reaches its ceiling's neighbourhood but not tv <= 0.02: the policy's share of each prime
    # follows D's beliefs, so longer training or more generator steps may even them out
    "largest_prime 61, 200 batches": {"largest_prime": 61, "nb_batches": 200, "test_session_occurrences": 100},
    "largest_prime 61, 60 generator steps": {"largest_prime": 61, "generator_steps": 60},
}
