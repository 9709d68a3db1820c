"""The distribution of the generated primes: the former default and the new method, greedy and
sampled, with and without window acceptance, and the GLN, over 3 seeds. Every run tests 100,000
held-out latents at its last session (the residue TV's noise floor is then about 0.005).
Run: python training/sweep.py training/sweeps/distribution.py
"""
SEEDS = (0, 1, 2)               # train.py's --seed of each configuration's runs
COMMON = {"test_samples": 100_000, "test_session_occurrences": 50}  # sessions at 50 and 100
FORMER = {"reward": "belief", "policy_gradient": "sampled", "generator_steps": 5,
          "discriminator_batch": "outputs", "discriminator_minibatch": 0, "acceptance": "none"}
CONFIGURATIONS = {
    "former default (belief reward), greedy": {**FORMER, "test_sampling": "greedy"},
    "former default (belief reward), sampled": FORMER,
    "default, greedy": {"test_sampling": "greedy"},
    "default without acceptance": {"acceptance": "none"},
    "default (max-entropy, acceptance)": {},
    "GLN discriminator": {"discriminator": "gln"},
}
