"""Ablations of the default method: one part changed per configuration, over 3 seeds.

Each configuration is a dict of train.py constants (see the top of training/train.py); every other
constant keeps its default. Run: python training/sweep.py training/sweeps/ablations.py
"""
SEEDS = (0, 1, 2)               # train.py's --seed of each configuration's runs
COMMON = {}                     # constants every configuration shares
CONFIGURATIONS = {
    "default": {},
    "no EWC": {"lambda_": 0.0},
    "BCE discriminator": {"discriminator_loss": "bce"},
    "model D Fisher": {"discriminator_fisher": "model"},
    "sampled policy gradient": {"policy_gradient": "sampled"},
    "5 generator steps": {"generator_steps": 5},
    "D on the sampled outputs": {"discriminator_batch": "outputs", "discriminator_minibatch": 0},
    "belief reward": {"reward": "belief"},
    "log reward": {"reward": "log"},
    "no undersampling": {"wanted_prime_ratio": 0.01},  # below the batch's prime share: keeps all
    "latent-encoded offsets": {"generator_input": "latent", "acceptance": "none"},
    "constant reward (negative control)": {"reward": "constant"},
}
