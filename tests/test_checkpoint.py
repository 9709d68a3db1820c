"""training/checkpoint.py: a whole checkpoint round-trips, crashes are recovered, pickles refused."""
import json
from pathlib import Path

import keras
import numpy as np
import pytest

import utils
from support import whole_state
from training import checkpoint, registry, train
from training import training_utils as tu


def trained(directory, argv=()) -> tuple:
    """A trainer after one small batch, saved to ``directory``; returns (trainer, config)."""
    offset = "--generator_head=real" not in argv
    config = train.parse_config([*argv, "--batch_size=300", "--steps=2",
                                 *(["--generator_steps=1"] if offset else [])])
    keras.utils.set_random_seed(0)
    trainer = registry.build_trainer(config)
    train.run_batch(trainer, config, np.random.default_rng(0), 1)
    checkpoint.save(directory, trainer, whole_state(config, 1))
    return trainer, config


def fresh(config, lr=1e-3, seed=7) -> tu.Trainer:
    keras.utils.set_random_seed(seed)
    return registry.build_trainer(dict(config, lr=lr))


def weights(trainer) -> list:
    return trainer.generator.model.weights + trainer.discriminator.model.weights


def test_checkpoint_round_trips_weights_fisher_and_optimizer(tmp_path):
    trainer, config = trained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(checkpoint.FILES)
    again = fresh(config)
    state = checkpoint.load(tmp_path, again)
    assert state["batch"] == 1
    for a, b in zip(weights(trainer), weights(again)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for ewc in ("ewc_generator", "ewc_discriminator"):
        for name in ("fisher", "anchor", "estimate"):
            np.testing.assert_array_equal(getattr(trainer, ewc).flat(name), getattr(again, ewc).flat(name))
    for a, b in zip(trainer.generator_optimizer.variables, again.generator_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, w in zip(again.ewc_discriminator.anchor, again.discriminator.model.trainable_weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(w))


@pytest.mark.parametrize("anchor, refused", [("batch", False), ("switch", True), ("average", True)])
def test_a_checkpoint_without_its_ewc_file_is_read_as_the_per_batch_anchor_left_it(anchor, refused, tmp_path):
    trainer, config = trained(tmp_path, [f"--ewc_anchor={anchor}"])
    (tmp_path / checkpoint.EWC_FILE).unlink()  # an older checkpoint's files
    again = fresh(config)
    if refused:  # its anchors are not the weights: they are lost
        with pytest.raises(utils.OptimusError, match="missing, and a checkpoint of ewc_anchor"):
            checkpoint.load(tmp_path, again)
        return
    checkpoint.load(tmp_path, again)
    for ewc in ("ewc_generator", "ewc_discriminator"):
        np.testing.assert_array_equal(getattr(again, ewc).flat("estimate"), getattr(trainer, ewc).flat())
    np.testing.assert_array_equal(again.ewc_generator.flat("anchor"), trainer.ewc_generator.flat("anchor"))


def test_resume_keeps_this_runs_learning_rate(tmp_path):
    _, config = trained(tmp_path)
    again = fresh(config, lr=5e-4)
    checkpoint.load(tmp_path, again)
    assert float(again.generator_optimizer.learning_rate) == pytest.approx(5e-4)
    assert float(again.discriminator_optimizer.learning_rate) == pytest.approx(5e-4)
    assert int(again.discriminator_optimizer.iterations) == 2  # the two steps before the save


def test_a_checkpoint_of_another_architecture_is_refused_naming_the_file(tmp_path):
    _, config = trained(tmp_path)
    with pytest.raises(utils.OptimusError, match=checkpoint.GENERATOR_FILE):
        checkpoint.load(tmp_path, fresh(dict(config, offsets=8)))


def test_load_networks_rebuilds_both_from_their_files(tmp_path):
    trainer, _ = trained(tmp_path, ["--generator_head=real", "--discriminator=seed", "--discriminator_input=scalar"])
    generator, discriminator = checkpoint.load_networks(tmp_path)
    z = np.array([[5.0], [123456.0]])
    np.testing.assert_array_equal(generator.outputs(z), trainer.generator.outputs(z))
    assert discriminator.model.name == trainer.discriminator.model.name
    assert generator.architecture == trainer.generator.architecture


def test_load_networks_without_files_says_to_train_first(tmp_path):
    with pytest.raises(utils.OptimusError, match="run training/train.py first"):
        checkpoint.load_networks(tmp_path)


def test_fisher_files_are_plain_float_arrays(tmp_path):
    trained(tmp_path)
    for name in (checkpoint.FISHER_GENERATOR_FILE, checkpoint.FISHER_DISCRIMINATOR_FILE):
        array = np.load(tmp_path / name, allow_pickle=False)
        assert array.dtype == np.float32 and array.ndim == 1


def test_a_journal_left_by_a_crash_is_rolled_forward(tmp_path):
    trained(tmp_path)
    state = json.loads((tmp_path / checkpoint.STATE_FILE).read_text())
    staged = tmp_path / (checkpoint.TEMP_PREFIX + "x-state.json")
    staged.write_text(json.dumps(dict(state, batch=2)))
    (tmp_path / checkpoint.JOURNAL_FILE).write_text(json.dumps({checkpoint.STATE_FILE: staged.name}))
    with pytest.raises(utils.OptimusError, match=checkpoint.JOURNAL_FILE):
        checkpoint.load_networks(tmp_path)  # test.py must not read a half-renamed pair
    checkpoint.recover(tmp_path)
    assert checkpoint.read_state(tmp_path)["batch"] == 2
    assert not (tmp_path / checkpoint.JOURNAL_FILE).exists() and not staged.exists()


def test_temporaries_without_a_journal_are_discarded(tmp_path):
    trained(tmp_path)
    stray = tmp_path / (checkpoint.TEMP_PREFIX + "abc-Optimus_Generator.h5")
    stray.write_bytes(b"half a file")
    checkpoint.recover(tmp_path)
    assert not stray.exists() and checkpoint.read_state(tmp_path)["batch"] == 1


def test_a_killed_runs_half_written_log_is_removed_and_other_files_are_not(tmp_path):
    stale = [tmp_path / f"{checkpoint.WRITE_PREFIX}ab-{n}" for n in (checkpoint.CSV_FILE, checkpoint.PLOT_FILE)]
    kept = [tmp_path / f"{checkpoint.WRITE_PREFIX}cd-probe", tmp_path / "notes-training_log.csv"]
    for path in stale + kept:
        path.write_text("x")
    checkpoint.remove_stale_writes(tmp_path)
    assert [p.exists() for p in stale + kept] == [False, False, True, True]


def test_written_files_follow_the_umask(tmp_path):
    import os
    import subprocess
    import sys
    code = ("import os, sys; from pathlib import Path; sys.path.insert(0, sys.argv[2]); os.umask(0o027); "
            "from training import checkpoint; "
            "checkpoint.commit(Path(sys.argv[1]), {checkpoint.STATE_FILE: lambda p: Path(p).write_text('{}')})")
    root = str(Path(checkpoint.__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-c", code, str(tmp_path), root], check=True)
    assert (tmp_path / checkpoint.STATE_FILE).stat().st_mode & 0o777 == 0o640
    assert os.umask(0o022) == 0o022 and os.umask(0o022) == 0o022  # this process's is untouched
