"""The hard track: both networks read each candidate's binary digits and nothing else (no residue
or other number-theoretic feature), over 3 seeds; the residue track's reference is methods.py's
default. Run: python training/sweep.py training/sweeps/bits.py
"""
SEEDS = (0, 1, 2)               # train.py's --seed of each configuration's runs
BITS = {"generator_input": "bits", "discriminator_input": "bits"}
COMMON = {**BITS, "nb_batches": 300, "test_session_occurrences": 50}  # sessions every 50 batches
READ = {"discriminator_activation": "sin", "generator_activation": "sin", "discriminator_loss": "bce"}
MIRROR = {"generator_input": "discriminator", "generator_layers": 0}
CONFIGURATIONS = {
    "MLP 2x64 (the default networks)": {},
    "MLP 2x256, sin activations": {"discriminator_units": 256, "discriminator_activation": "sin",
                                   "generator_activation": "sin"},
    "MLP 2x64, magnitude curriculum": {"curriculum_batches": 150, "curriculum_start": 16},
    "GRU 32 reading the digits, 25 D steps of 250": {"discriminator": "recurrent", "discriminator_units": 32,
                                                     "steps": 25, "discriminator_minibatch": 250},
    # Readers whose output does not depend on a number's length (see --help's reader), a sin MLP
    # after them, binary cross-entropy for D. First each network with its own reader:
    "frequencies reader, each network its own": {**READ, "reader": "frequencies"},
    "rotation reader, each network its own": {**READ, "reader": "rotation"},
    "period counts, each network its own": {**READ, "reader": "periods"},
    # then G scoring with a linear layer on a frozen copy of D's reader and hidden layers:
    "frequencies reader, G reads D's features": {**READ, **MIRROR, "reader": "frequencies"},
    "rotation reader, G reads D's features": {**READ, **MIRROR, "reader": "rotation"},
    "period counts, G reads D's features": {**READ, **MIRROR, "reader": "periods"},
}
