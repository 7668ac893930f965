"""The adaptation stage end to end: batch mixing from pair shards, resume after a crash, the CLI."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from daaa_tf import StageError, runtime
from daaa_tf.data.mixing import adaptation_dataset, stream_counts
from daaa_tf.data.pair_writer import write_pair_shards
from daaa_tf.models import build_classifier, load_classifier, model_spec
from daaa_tf.stages.adapt import AdaptConfig, run_adaptation

SIZE = 16


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A source model, pair shards (translated = 255 - image, so pairing is checkable) and an MNIST-M folder."""
    root = tmp_path_factory.mktemp("adapt")
    rng = np.random.default_rng(0)
    runtime.set_seed(0)
    build_classifier("digit_cnn", 10, SIZE).save(root / "source.keras")
    pairs = root / "pairs"
    for kind, offset in (("source", 0), ("target", 1000)):
        n = 40
        images = rng.integers(0, 200, (n, SIZE, SIZE, 3), dtype=np.uint8)
        images[:, 0, 0, 0] = np.arange(n)  # an id pixel
        labels = (np.arange(n) + offset) % 10
        write_pair_shards(str(pairs), kind, images, 255 - images, labels, shard_size=16)
    mm = root / "mnist_m"
    (mm / "mnist_m_test").mkdir(parents=True)
    (mm / "mnist_m_train").mkdir()
    lines = []
    for i in range(12):
        name = f"{i:08d}.png"
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(mm / "mnist_m_test" / name)
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(mm / "mnist_m_train" / name)
        lines.append(f"{name} {i % 10}")
    (mm / "mnist_m_test_labels.txt").write_text("\n".join(lines) + "\n")
    (mm / "mnist_m_train_labels.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("replicas", [1, 2])
def test_mixed_batches_pair_in_batch_per_replica(workdir, replicas):
    counts = stream_counts(16, (0.375, 0.125, 0.375, 0.125), num_replicas=replicas)
    assert counts == {"s": 6, "tf": 2, "t": 6, "sf": 2}
    batch = next(iter(adaptation_dataset(str(workdir / "pairs"), counts, replicas, seed=0)))
    assert batch["xs"].shape == (6, SIZE, SIZE, 3) and batch["xtf"].shape == (2, SIZE, SIZE, 3)
    xs, xtf = batch["xs"].numpy(), batch["xtf"].numpy()
    xt, xsf = batch["xt"].numpy(), batch["xsf"].numpy()
    for r in range(replicas):  # replica r's x~t are the translations of its first x_s
        local_s = xs[r * 6 // replicas:(r + 1) * 6 // replicas]
        local_tf = xtf[r * 2 // replicas:(r + 1) * 2 // replicas]
        np.testing.assert_array_equal(255 - local_tf, local_s[: len(local_tf)])
        local_t = xt[r * 6 // replicas:(r + 1) * 6 // replicas]
        local_sf = xsf[r * 2 // replicas:(r + 1) * 2 // replicas]
        np.testing.assert_array_equal(255 - local_sf, local_t[: len(local_sf)])
    np.testing.assert_array_equal(batch["ytf"].numpy()[:1], batch["ys"].numpy()[:1])


def _cfg(workdir, out, **kw):
    base = dict(out_dir=str(out), source_model=str(workdir / "source.keras"), pairs_dir=str(workdir / "pairs"),
                target=f"mnist_m:{workdir / 'mnist_m'}", image_size=SIZE, batch_size=8,
                proportions=(0.25, 0.25, 0.25, 0.25), sync_every=3, threshold=0.0, epochs=3, steps_per_epoch=4,
                eval_batch_size=8, num_attention_images=2)
    base.update(kw)
    return AdaptConfig(**base)


class Crash(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == 10:  # in the middle of epoch 3
            raise KeyboardInterrupt("simulated kill")


def test_resume_after_crash_equals_uninterrupted_run(workdir, tmp_path):
    full = run_adaptation(_cfg(workdir, tmp_path / "full"))
    full_w = keras.models.load_model(tmp_path / "full" / "model.keras").get_weights()
    with pytest.raises(KeyboardInterrupt):
        run_adaptation(_cfg(workdir, tmp_path / "crash"), extra_callbacks=[Crash()])
    assert not os.path.exists(tmp_path / "crash" / "model.keras")
    resumed = run_adaptation(_cfg(workdir, tmp_path / "crash"))
    resumed_w = keras.models.load_model(tmp_path / "crash" / "model.keras").get_weights()
    assert resumed["steps"] == full["steps"] == 12
    assert resumed["syncs"] == full["syncs"] == [3, 6, 9, 12]
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(full_w, resumed_w))
    assert diff <= 1e-6, diff
    assert len(resumed["history"]["val_accuracy"]) == 3
    assert resumed["history"]["val_accuracy"][-1] == pytest.approx(full["history"]["val_accuracy"][-1])
    assert os.listdir(tmp_path / "full" / "tensorboard")


def test_more_epochs_train_a_finished_run_on_as_one_longer_run(workdir, tmp_path):
    # The LR restarts at every M_post sync and the batches are positioned by the step, so a finished 2-epoch run
    # raised to 3 epochs resumes and equals a 3-epoch run; without restarts the annealing spans --epochs: refused.
    full = run_adaptation(_cfg(workdir, tmp_path / "full"))
    short = run_adaptation(_cfg(workdir, tmp_path / "short", epochs=2))
    assert short["steps"] == 8
    longer = run_adaptation(_cfg(workdir, tmp_path / "short"))
    assert longer["steps"] == 12 and longer["syncs"] == full["syncs"] == [3, 6, 9, 12]
    assert len(longer["history"]["val_accuracy"]) == 3
    assert longer["history"]["val_accuracy"][:2] == short["history"]["val_accuracy"]
    full_w = keras.models.load_model(tmp_path / "full" / "model.keras").get_weights()
    longer_w = keras.models.load_model(tmp_path / "short" / "model.keras").get_weights()
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(full_w, longer_w)) <= 1e-6
    with pytest.raises(StageError, match="--epochs: 3 -> 2"):  # fewer epochs: another run
        run_adaptation(_cfg(workdir, tmp_path / "short", epochs=2))
    run_adaptation(_cfg(workdir, tmp_path / "emc", epochs=1, restart_lr=False))
    with pytest.raises(StageError, match="--epochs: 1 -> 2"):
        run_adaptation(_cfg(workdir, tmp_path / "emc", epochs=2, restart_lr=False))


def test_adapt_cli_end_to_end_and_bad_input(workdir, tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    base = [sys.executable, "-m", "trainers.adapt", f"--run_dir={tmp_path}", f"--image_size={SIZE}",
            f"--source_model={workdir / 'source.keras'}", f"--pairs_dir={workdir / 'pairs'}",
            f"--target=mnist_m:{workdir / 'mnist_m'}", "--batch_size=8", "--proportions=0.25,0.25,0.25,0.25",
            "--epochs=1", "--steps_per_epoch=3", "--sync_every=2", "--eval_batch_size=8"]
    out = subprocess.run(base, capture_output=True, text=True, env=env, cwd=os.getcwd())
    assert out.returncode == 0, out.stderr[-2000:]
    assert "target test accuracy" in out.stdout
    for name in ("model.keras", "metrics.json", "flags.txt"):
        assert os.path.exists(tmp_path / "adapt" / name)
    assert "--sync_every=2" in (tmp_path / "adapt" / "flags.txt").read_text()
    assert json.loads((tmp_path / "adapt" / "metrics.json").read_text())["code"] == runtime.code_version()
    bad = subprocess.run(base + ["--proportions=0.5,0.5,0.5,0.5", f"--adapt_dir={tmp_path / 'bad'}"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "--proportions" in bad.stderr and "Traceback" not in bad.stderr
    missing = subprocess.run(base + [f"--source_model={tmp_path / 'nope.keras'}", f"--adapt_dir={tmp_path / 'b'}"],
                             capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "nope.keras" in missing.stderr and "Traceback" not in missing.stderr


class Poison(keras.callbacks.Callback):
    """Makes the target weights NaN after update 6 (in epoch 2): the next loss is NaN."""

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == 6:
            weights = self.model.target.get_weights()
            weights[-1][...] = np.nan  # the classifier bias: the logits become NaN
            self.model.target.set_weights(weights)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_backup(workdir, tmp_path):
    from daaa_tf import StageError
    from daaa_tf.stages.callbacks import Backup

    out = tmp_path / "nan"
    with pytest.raises(StageError, match=r"NaN/inf by step 8 \(finite at step 4\)"):
        run_adaptation(_cfg(workdir, out), extra_callbacks=[Poison()])
    assert not (out / "model.keras").exists()
    assert Backup.exists(str(out / "backup"))
    import json

    history = json.loads((out / "backup" / "history.json").read_text())
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])  # only the good epoch was backed up


def test_digit_widths_come_from_the_source_network(workdir, tmp_path):
    """A source network of other widths (--digit_widths): the adapted network and its float32 export rebuild
    take them from it (a stage that built the default widths could not even load its weights)."""
    from daaa_tf.serving.writer import as_float32

    runtime.set_seed(0)
    build_classifier("digit_cnn", 10, SIZE, widths=(4, 8, 12)).save(tmp_path / "narrow.keras")
    run_adaptation(_cfg(workdir, tmp_path / "a", source_model=str(tmp_path / "narrow.keras"), epochs=1,
                        precision="mixed_bfloat16"))
    adapted = load_classifier(str(tmp_path / "a" / "model.keras"))
    assert model_spec(adapted)["widths"] == (4, 8, 12)
    rebuilt = as_float32(adapted)
    assert rebuilt is not adapted and model_spec(rebuilt)["widths"] == (4, 8, 12)
    x = np.random.default_rng(0).uniform(-1, 1, (3, SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_allclose(rebuilt(x)["logits"], adapted(x)["logits"], atol=0.1)


def test_fit_inputs_run_without_the_autotuning_thread(workdir, tmp_path, monkeypatch):
    """Both datasets the stage hands to fit go through workers.fit_input: DATA sharding, and tf.data autotuning off
    (its thread made the end of fit stall up to a minute, docs/benchmark.md)."""
    import tensorflow as tf

    seen = []
    original = keras.Model.fit

    def recording_fit(self, x=None, *args, validation_data=None, **kwargs):
        seen.extend(d.options() for d in (x, validation_data))
        return original(self, x, *args, validation_data=validation_data, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    run_adaptation(_cfg(workdir, tmp_path / "run", epochs=1, steps_per_epoch=2))
    assert len(seen) == 2
    for options in seen:
        assert options.autotune.enabled is False
        assert options.experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
