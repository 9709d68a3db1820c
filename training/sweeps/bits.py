"""The hard track: both networks read each candidate's binary digits and nothing else, over 3 seeds.

No residue or other number-theoretic feature enters either network; the reference figure of the
residue track is the default of methods.py. Each configuration is a dict of train.py constants
(see the top of training/train.py); every other constant keeps its default.
Run: python training/sweep.py training/sweeps/bits.py
"""
SEEDS = (0, 1, 2)               # train.py's --seed of each configuration's runs
BITS = {"generator_input": "bits", "discriminator_input": "bits"}
COMMON = {**BITS, "nb_batches": 300, "test_session_occurrences": 50}  # sessions every 50 batches
CONFIGURATIONS = {
    "MLP 2x64 (the default networks)": {},
    "MLP 2x256, sin activations": {"discriminator_units": 256, "discriminator_activation": "sin",
                                   "generator_activation": "sin"},
    "MLP 2x64, magnitude curriculum": {"curriculum_batches": 150, "curriculum_start": 16},
    "GRU 32 reading the digits, 25 D steps of 250": {"discriminator": "recurrent", "discriminator_units": 32,
                                                     "steps": 25, "discriminator_minibatch": 250},
}
