"""TensorBoard events of a run: the tags and values of training_log.csv and the test sessions, one
step per batch, continued on resume, and repaired from state.json after a kill."""
import collections
import csv
import io

import numpy as np
import pytest
import tensorflow as tf

from training import bookkeeping, checkpoint, train

TINY = ["--batch_size=300", "--steps=3", "--generator_steps=2", "--nb_samples=10",
        "--test_samples=200", "--test_session_occurrences=2", "--minimum_batch_size=20"]


def read_events(directory) -> dict:
    """{tag: [(step, value), ...]} of every scalar, and the histograms' steps under "hist:<tag>"."""
    found = collections.defaultdict(list)
    for path in sorted((directory / bookkeeping.TENSORBOARD_DIR).glob("*tfevents*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                if tensor.ndim == 0:
                    found[value.tag].append((event.step, float(tensor)))
                else:
                    found[f"hist:{value.tag}"].append((event.step, float(tensor[:, 2].sum())))
    return found


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: None)

    def train_to(batches: int):
        status = train.main([*TINY, f"--checkpoint_dir={tmp_path}", f"--nb_batches={batches}"])
        out, err = capsys.readouterr()
        assert status == 0, err
        return out
    return train_to


def csv_rows(directory) -> list:
    return list(csv.DictReader(io.StringIO((directory / train.CSV_FILE).read_text())))


def assert_events_match_the_log(directory, batches: int) -> None:
    events = read_events(directory)
    rows = csv_rows(directory)
    state = checkpoint.read_state(directory)
    for tag, column in (("batch/discriminator_loss", "discriminator_loss_last"),
                        ("batch/generator_loss", "generator_loss_last"), ("batch/reward", "reward_last"),
                        ("batch/entropy", "entropy_last"), ("batch/seconds", "seconds")):
        assert [s for s, _ in events[tag]] == list(range(1, batches + 1)), tag  # once per batch
        np.testing.assert_allclose([v for _, v in events[tag]], [float(r[column]) for r in rows], rtol=1e-6)
    sessions = [t["batch"] for t in state["tests"]]
    assert [s for s, _ in events["session/beyond/score"]] == sessions
    np.testing.assert_allclose([v for _, v in events["session/beyond/score"]],
                               [t["beyond"]["score"] for t in state["tests"]], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in events["session/in_range/tv"]],
                               [t["in_range"]["distribution"]["tv"] for t in state["tests"]], rtol=1e-6)
    for tag in ("hist:batch/offsets_chosen", "hist:batch/discriminator_beliefs"):
        assert [s for s, _ in events[tag]] == list(range(1, batches + 1))
        assert all(count == 300 for _, count in events[tag])  # one entry per latent of the batch


@pytest.mark.slow
def test_a_run_writes_its_log_and_sessions_as_events_and_a_resume_continues_them(run, tmp_path):
    run(3)
    assert_events_match_the_log(tmp_path, 3)
    out = run(5)
    assert "at batch 3" in out
    assert_events_match_the_log(tmp_path, 5)


@pytest.mark.slow
def test_events_past_the_saved_batch_are_dropped_and_missing_ones_rewritten_on_resume(run, tmp_path):
    run(3)
    with tf.summary.create_file_writer(str(tmp_path / bookkeeping.TENSORBOARD_DIR)).as_default():
        for step in (4, 5):  # what a killed run's next batches could have left
            tf.summary.scalar("batch/discriminator_loss", -1.0, step=step)
    run(4)
    assert_events_match_the_log(tmp_path, 4)
    for path in (tmp_path / bookkeeping.TENSORBOARD_DIR).glob("*"):  # a kill after the save, before the events
        path.unlink()
    out = run(4)
    assert "nothing to train" in out
    assert_events_match_the_log(tmp_path, 4)


def test_a_new_per_batch_metric_is_one_entry_of_the_row(tmp_path):
    """A number added to a batch's row reaches the CSV log and TensorBoard with no other edit; a
    histogram's list is neither a column nor a scalar (the control)."""
    row = {"batch": 1, "skipped": 0, "seconds": 0.5, "my_metric_last": 2.5, "offset_counts": [1, 2]}
    state = {"batch": 1, "history": [row], "tests": []}
    bookkeeping.write_log_files(tmp_path, state, plot=False)
    rows = csv_rows(tmp_path)
    assert rows[0]["my_metric_last"] == "2.5" and "offset_counts" not in rows[0]
    assert list(rows[0])[:len(bookkeeping.CSV_COLUMNS)] == list(bookkeeping.CSV_COLUMNS)
    bookkeeping.Events(tmp_path, state)
    events = read_events(tmp_path)
    assert events["batch/my_metric"] == [(1, 2.5)] and events["batch/seconds"] == [(1, 0.5)]
    assert "batch/offset_counts" not in events and "batch/batch" not in events
