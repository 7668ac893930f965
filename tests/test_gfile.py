"""Every file of a run goes through tf.io.gfile: the stages run end to end on ``ram://`` (TensorFlow's in-memory
filesystem, a stand-in for gs:// and the other non-local filesystems TF supports), data included."""

import uuid

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from daaa_tf import StageError, io, runtime
from daaa_tf.config import AdaptConfig, SourceConfig
from daaa_tf.data.pair_writer import write_pair_shards

gfile = tf.io.gfile
SIZE = 16


def _png(array):
    import io as pyio

    buffer = pyio.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def ram_run():
    root = f"ram://daaa_test_{uuid.uuid4().hex[:8]}"
    yield root
    io.remove_tree(root)


@pytest.fixture(scope="module")
def ram_data(ram_run):
    """An MNIST-M-layout folder on ram:// (12 PNGs per split); returns its path."""
    rng = np.random.default_rng(0)
    data = f"{ram_run}/data/mnist_m"
    for split in ("train", "test"):
        lines = []
        for i in range(12):
            name = f"{i:08d}.png"
            io.write_text(f"{data}/mnist_m_{split}/{name}", _png(rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8)),
                          "wb")
            lines.append(f"{name} {i % 10}")
        io.write_text(f"{data}/mnist_m_{split}_labels.txt", "\n".join(lines) + "\n")
    return data


def test_atomic_path_json_and_directories_on_ram(ram_run):
    path = f"{ram_run}/io/a/b.json"
    io.write_json(path, {"x": 1})
    assert io.read_json(path) == {"x": 1} and io.read_json(f"{ram_run}/io/missing.json", "d") == "d"
    with pytest.raises(RuntimeError), io.atomic_path(path) as tmp:
        io.write_text(tmp, "half")
        raise RuntimeError("killed")
    assert io.read_json(path) == {"x": 1}  # the old version survives a failed write
    assert gfile.listdir(f"{ram_run}/io/a") == ["b.json"]  # and no temporary is left
    with io.atomic_path(f"{ram_run}/io/dir") as tmp:  # a directory, renamed file by file on ram://
        io.write_text(f"{tmp}/sub/f.txt", "x")
    assert io.read_text(f"{ram_run}/io/dir/sub/f.txt") == "x" and gfile.listdir(f"{ram_run}/io") == ["a", "dir"]
    assert io.sha256_file(path) == __import__("hashlib").sha256(io.read_text(path, "rb")).hexdigest()


def test_source_adaptation_and_export_on_ram(ram_run, ram_data, capsys):
    """Data (an MNIST-M folder, pair shards), the source model, the run directories and the export all on
    ram://: the stages write their artifacts there, resume (fingerprint "same") and refuse other settings."""
    from daaa_tf.stages.adapt import run_adaptation
    from daaa_tf.stages.source import train_source

    rng = np.random.default_rng(1)
    data = ram_data
    run = f"{ram_run}/run"
    source_cfg = SourceConfig(run_dir=run, source=f"mnist_m:{data}", target=f"mnist_m:{data}", image_size=SIZE,
                              epochs=1, batch_size=4, eval_batch_size=8)
    metrics = train_source(source_cfg)
    for name in ("model.keras", "metrics.json", "fingerprint.json", "flags.txt", "backup/checkpoint",
                 "backup/history.json"):
        assert gfile.exists(f"{run}/source/{name}"), name
    assert gfile.listdir(f"{run}/source/tensorboard")
    assert f"--run_dir={run}" in io.read_text(f"{run}/source/flags.txt").splitlines()  # not made "absolute"
    again = train_source(source_cfg)  # complete with these settings: returned as it is
    assert again == metrics and "is complete with these settings" in capsys.readouterr().out

    runtime.set_seed(0)
    pairs = f"{run}/pairs"
    for kind in ("source", "target"):
        images = rng.integers(0, 200, (24, SIZE, SIZE, 3), dtype=np.uint8)
        write_pair_shards(pairs, kind, images, 255 - images, np.arange(24) % 10, shard_size=10)
    assert len(gfile.glob(f"{pairs}/source-*.tfrecord")) == 3

    def adapt_cfg(**kw):
        return AdaptConfig(**{**dict(run_dir=run, source_model=f"{run}/source/model.keras", pairs_dir=pairs,
                                     target=f"mnist_m:{data}", image_size=SIZE, batch_size=8,
                                     proportions=(0.25, 0.25, 0.25, 0.25), sync_every=2, threshold=0.0, epochs=2,
                                     steps_per_epoch=2, eval_batch_size=8, num_attention_images=2), **kw})

    with pytest.raises(KeyboardInterrupt):  # killed in epoch 2: the epoch-1 backup is on ram://
        run_adaptation(adapt_cfg(), extra_callbacks=[_Crash()])
    out = f"{run}/adapt"
    assert gfile.exists(f"{out}/backup/checkpoint") and not gfile.exists(f"{out}/model.keras")
    adapted = run_adaptation(adapt_cfg())
    assert "resuming adaptation after epoch 1 (step 2)" in capsys.readouterr().out
    assert adapted["steps"] == 4 and len(adapted["history"]["loss"]) == 2
    for name in ("model.keras", "metrics.json", "fingerprint.json", "flags.txt"):
        assert gfile.exists(f"{out}/{name}"), name
    assert gfile.listdir(f"{out}/tensorboard/train") and gfile.listdir(f"{out}/tensorboard/attention")
    with pytest.raises(StageError, match="--beta: 1.0 -> 0.0"):
        run_adaptation(adapt_cfg(beta=0.0))
    before = set(gfile.listdir(run))
    run_adaptation(adapt_cfg(beta=0.0, overwrite=True))  # the old run is moved aside, on ram:// too
    moved = sorted(set(gfile.listdir(run)) - before)
    assert len(moved) == 1 and moved[0].startswith("adapt.old-")
    assert gfile.exists(f"{run}/{moved[0]}/model.keras") and gfile.exists(f"{out}/model.keras")

    from daaa_tf.models import load_classifier
    from daaa_tf.serving import writer

    export = f"{run}/export"
    images = rng.integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8)
    parity, failed = writer.export_formats(load_classifier(f"{out}/model.keras"), export, ["saved_model", "float"],
                                           images, np.arange(8) % 10)
    assert failed == [] and parity["formats"]["float"]["installed"]
    for name in ("saved_model/1/saved_model.pb", "model_float.tflite", "labels.txt", "parity.json"):
        assert gfile.exists(f"{export}/{name}"), name
    loaded = tf.saved_model.load(f"{export}/saved_model/1")
    probabilities = loaded.signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, writer.keras_probabilities(load_classifier(f"{out}/model.keras"),
                                                                         images), atol=1e-5)


def test_cyclegan_and_its_pair_shards_on_ram(ram_run, ram_data):
    from daaa_tf.config import CycleGANConfig
    from daaa_tf.data.pairs import read_manifest
    from daaa_tf.stages.cyclegan import run_cyclegan

    data = ram_data
    run = f"{ram_run}/gan"
    cfg = CycleGANConfig(run_dir=run, source=f"mnist_m:{data}", target=f"mnist_m:{data}", image_size=SIZE, steps=2,
                         steps_per_epoch=2, batch_size=2, gen_width=4, gen_blocks=1, disc_width=4, disc_layers=1,
                         pool_size=0, precision="float32", shard_size=5)
    metrics = run_cyclegan(cfg, log=lambda msg: None)
    assert metrics["step"] == 2 and metrics["translation"]["shards"] == {"source": 3, "target": 3}
    for name in ("g_st.keras", "g_ts.keras", "samples.png", "samples/step_0000002.png", "metrics.json",
                 "checkpoints/checkpoint", "fingerprint.json"):
        assert gfile.exists(f"{run}/cyclegan/{name}"), name
    manifest = read_manifest(f"{run}/pairs", verify=True)  # every shard's size and sha256 checked on ram://
    assert manifest["complete"] and manifest["counts"] == {"source": 12, "target": 12}
    again = run_cyclegan(cfg, log=lambda msg: None)  # complete: nothing trained, every shard kept
    assert again["step"] == 2 and io.read_json(f"{run}/pairs/manifest.json") == manifest


class _Crash(__import__("keras").callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == 3:
            raise KeyboardInterrupt("simulated kill")
