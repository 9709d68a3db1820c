"""The hard track at every length (the length curve of lengths.py), over 3 seeds: the digit readers
of bits.py whose output does not depend on a number's length, the tied phase units that snap to
exact fractions, the digits MLP (which cannot read past 38 digits) and, for comparison, the residue
track's default. The best row: tied phases, 24 units a period, 600 batches.
Run: python training/sweep.py training/sweeps/lengths.py --workers=2
"""
SEEDS = (0, 1, 2)               # train.py's --seed of each configuration's runs
BITS = {"generator_input": "discriminator", "generator_layers": 0, "discriminator_input": "bits",
        "discriminator_loss": "bce"}  # G scores with a linear layer on a frozen copy of D's features
COMMON = {"nb_batches": 300, "test_session_occurrences": 50}
CONFIGURATIONS = {
    "residue track: the default (100 batches)": {"nb_batches": 100},
    "digits MLP 2x64 (no reader)": {"generator_input": "bits", "discriminator_input": "bits"},
    "period counts, sin MLP 2x64, G reads D's features": {
        **BITS, "reader": "periods", "discriminator_activation": "sin", "generator_activation": "sin"},
    "tied phases, 12 units a period, snapped at half, linear readout, G reads D's features": {
        **BITS, "reader": "phases", "discriminator_layers": 0},
    # the phase reader's priors and schedule: seeds that miss 7 have no unit of its pattern at the snap
    "tied phases, 24 units a period": {**BITS, "reader": "phases", "discriminator_layers": 0, "phase_units": 24},
    "tied phases, 600 batches (snapped at 300)": {**BITS, "reader": "phases", "discriminator_layers": 0,
                                                  "nb_batches": 600},
    "tied phases, 24 units a period, 600 batches": {**BITS, "reader": "phases", "discriminator_layers": 0,
                                                    "phase_units": 24, "nb_batches": 600},
    "tied phases, snap tolerance 0.02": {**BITS, "reader": "phases", "discriminator_layers": 0,
                                         "snap_tolerance": 0.02},
}
