"""One CycleGAN step under MirroredStrategy on 2 logical CPUs equals one step on a single device.

conftest.py splits the CPU into two logical devices. Plain SGD (not Adam, whose first step is ~lr*sign(g)
and would hide a gradient scaled by the replica count); pool disabled (its draws differ per replica by design).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from daaa_tf import runtime
from daaa_tf.data import Domain
from daaa_tf.method import cyclegan as cg
from daaa_tf.stages import cyclegan as stage

pytestmark = pytest.mark.skipif(len(tf.config.list_logical_devices("CPU")) < 2,
                                reason="needs 2 logical CPUs (tests/conftest.py)")


def _one_step(strategy, weights, gan_loss, identity, pool):
    cfg = cg.CycleGANConfig(image_size=8, gen_width=4, gen_blocks=1, disc_width=4, disc_layers=2,
                            pool_size=pool, identity_weight=identity, gan_loss=gan_loss)
    model = cg.build_cyclegan(cfg, strategy)
    with strategy.scope():
        model.compile({k: keras.optimizers.SGD(0.01) for k in cg.NETWORKS})
    if weights is not None:
        for k in cg.NETWORKS:
            getattr(model, k).set_weights(weights[k])
    start = {k: getattr(model, k).get_weights() for k in cg.NETWORKS}
    rng = np.random.default_rng(0)
    x_s = rng.uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    x_t = rng.uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    hist = model.fit(tf.data.Dataset.from_tensors((x_s, x_t)), epochs=1, verbose=0, shuffle=False)
    end = {k: getattr(model, k).get_weights() for k in cg.NETWORKS}
    return start, end, {k: float(v[-1]) for k, v in hist.history.items()}


def _max_delta(a, b):
    return max(float(np.max(np.abs(x - y))) for k in cg.NETWORKS for x, y in zip(a[k], b[k]))


@pytest.mark.parametrize("gan_loss, identity", [("lsgan", 5.0), ("bce", 0.0)])
def test_mirrored_two_cpus_matches_single_device(gan_loss, identity):
    start, single, logs1 = _one_step(tf.distribute.OneDeviceStrategy("/cpu:0"), None, gan_loss, identity, 0)
    mirrored = runtime.make_strategy("mirrored")
    assert mirrored.num_replicas_in_sync == 2
    _, replicated, logs2 = _one_step(mirrored, start, gan_loss, identity, 0)
    for k in cg.NETWORKS:  # every network moved
        assert max(float(np.max(np.abs(x - y))) for x, y in zip(start[k], single[k])) > 1e-4, k
    # relative to how far one step moved the weights (bce: 0.45): the two runs differed by 3e-5 to 6e-5 from run to
    # run on an AVX2 CPU (replicas sum in another order) and by under 1e-5 on an AMX one; a gradient scaled by the
    # replica count would differ by about half the step
    assert _max_delta(single, replicated) <= 1e-3 * _max_delta(start, single)
    assert max(abs(logs1[k] - logs2[k]) for k in logs1) <= 1e-4  # trackers: unscaled per-batch values


def test_mirrored_step_with_pool_runs():
    _, _, logs = _one_step(runtime.make_strategy("mirrored"), None, "lsgan", 0.0, 3)
    assert all(np.isfinite(v) for v in logs.values())


def array_domain(images, labels=None):
    """An in-memory ``Domain`` (labels -1 for an unlabelled target)."""
    images = np.asarray(images, np.uint8)
    labels = np.full(len(images), -1, np.int32) if labels is None else labels
    return Domain("array", "train", [str(i) for i in range(10)], images.shape[1], images=images, labels=labels)


def test_train_and_translate_under_mirrored(tmp_path):
    rng = np.random.default_rng(0)
    src = array_domain(rng.integers(0, 256, (12, 8, 8, 3)), np.arange(12) % 10)
    tgt = array_domain(rng.integers(0, 256, (10, 8, 8, 3)))
    cfg = cg.CycleGANConfig(image_size=8, gen_width=4, gen_blocks=1, disc_width=4, disc_layers=2, pool_size=3,
                            batch_size=4, steps=2, steps_per_epoch=1)
    strategy = runtime.make_strategy("mirrored")
    model, metrics = stage.train_cyclegan(cfg, src, tgt, str(tmp_path / "cyclegan"), strategy, verbose=0)
    assert metrics["step"] == 2 and (tmp_path / "cyclegan" / "samples.png").exists()
    resumed, _ = stage.train_cyclegan(cfg, src, tgt, str(tmp_path / "cyclegan"), strategy, verbose=0)
    np.testing.assert_array_equal(resumed.pool_t.buffer.value.numpy(), model.pool_t.buffer.value.numpy())
    info = stage.translate_domains(model, src, tgt, str(tmp_path / "pairs"), batch_size=8, progress=False)
    assert info["translated"] == 22
