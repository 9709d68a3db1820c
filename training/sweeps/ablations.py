"""Ablations of the default method: one part changed per configuration, over 3 seeds, each run
tested on 100,000 latents in each range at batches 50 and 100. The negative L2 acts only on the
seed's real head, so its pair of rows changes that head.
Run: python training/sweep.py training/sweeps/ablations.py
"""
SEEDS = (0, 1, 2)               # train.py's --seed of each configuration's runs
COMMON = {"test_samples": 100_000, "test_session_occurrences": 50}
CONFIGURATIONS = {
    "default": {},
    "no EWC": {"lambda_": 0.0},
    "no online decay": {"fisher_decay": 0.0},
    "BCE discriminator": {"discriminator_loss": "bce"},
    "model D Fisher": {"discriminator_fisher": "model"},
    "no undersampling": {"wanted_prime_ratio": 0.01},  # below the batch's prime share: keeps all
    "sampled policy gradient": {"policy_gradient": "sampled"},
    "5 generator steps": {"generator_steps": 5},
    "D on the sampled outputs": {"discriminator_batch": "outputs", "discriminator_minibatch": 0},
    "belief reward": {"reward": "belief"},
    "log reward": {"reward": "log"},
    "latent-encoded offsets": {"generator_input": "latent", "acceptance": "none"},
    "constant reward (negative control)": {"reward": "constant"},
    "real head, negative L2 on": {"generator_head": "real"},
    "real head, negative L2 off": {"generator_head": "real", "negative_l2": 0.0},
}
