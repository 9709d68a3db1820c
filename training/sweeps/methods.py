"""The README's comparison of methods, over 3 seeds. Each configuration is a dict of train.py
constants (see the top of training/train.py); every other constant keeps its default.
Run: python training/sweep.py training/sweeps/methods.py
"""
SEEDS = (0, 1, 2)               # train.py's --seed of each configuration's runs
COMMON = {}                     # constants every configuration shares
CONFIGURATIONS = {
    "seed's method": {"generator_head": "real", "discriminator": "seed", "discriminator_input": "scalar"},
    "residue D, pathwise G": {"generator_head": "real"},
    "default": {},
    "GLN discriminator": {"discriminator": "gln"},
}
