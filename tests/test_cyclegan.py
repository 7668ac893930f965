"""CycleGAN library: fake pool, train_step, resume = uninterrupted, samples, translation, input checks."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from daaa_tf.data import Domain, pairs
from daaa_tf.data.pipelines import conform_images, training_pairs
from daaa_tf.method import cyclegan as cg
from daaa_tf.models.gan_nets import ImagePool
from daaa_tf.stages import cyclegan as stage

TINY = dict(image_size=8, gen_width=4, gen_blocks=1, disc_width=4, disc_layers=2, batch_size=4)


def array_domain(images, labels=None):
    """An in-memory ``Domain`` (labels -1 for an unlabelled target)."""
    images = np.asarray(images, np.uint8)
    labels = np.full(len(images), -1, np.int32) if labels is None else labels
    return Domain("array", "train", [str(i) for i in range(10)], images.shape[1], images=images, labels=labels)


def _domains(n_s=14, n_t=10):
    rng = np.random.default_rng(0)
    src = array_domain(rng.integers(0, 256, (n_s, 8, 8, 3)), np.arange(n_s) % 10)
    tgt = array_domain(rng.integers(0, 256, (n_t, 8, 8, 3)))
    return src, tgt


def test_image_pool_fills_then_swaps_deterministically():
    pool = ImagePool(3, (1, 1, 1), seed=0)
    first = np.arange(1, 3, dtype="float32").reshape(2, 1, 1, 1)
    np.testing.assert_array_equal(pool(first, step=0).numpy(), first)  # filling: shown as is
    second = np.arange(3, 7, dtype="float32").reshape(4, 1, 1, 1)
    shown = pool(second, step=1).numpy().ravel()
    assert shown[0] == 3  # fills the last free slot
    assert int(pool.count.value) == 3
    stored = set(pool.buffer.value.numpy().ravel())
    assert 3 in stored and stored <= {1, 2, 3, 4, 5, 6}
    for got, new in zip(shown[1:], second.ravel()[1:]):
        assert got == new or got in {1, 2, 3}  # either the new fake or an older one it replaced
    fresh = ImagePool(3, (1, 1, 1), seed=0)
    fresh(first, step=0)
    np.testing.assert_array_equal(fresh(second, step=1).numpy().ravel(), shown)  # same (seed, step): same draws
    many = np.full((64, 1, 1, 1), 9, "float32")
    assert 10 < int(np.sum(pool(many, step=2).numpy() != 9)) < 54  # about half show an old image


def test_train_step_updates_all_networks_and_tracks_losses():
    model = cg.build_cyclegan(cg.CycleGANConfig(**TINY, identity_weight=5.0, gan_loss="bce"))
    before = {k: [w.copy() for w in getattr(model, k).get_weights()] for k in cg.NETWORKS}
    src, tgt = _domains()
    data = training_pairs((src.dataset(), 14), (tgt.dataset(), 10), 4)
    logs = model.fit(data, steps_per_epoch=2, epochs=1, verbose=0).history
    assert set(logs) == {"g_st_adv", "g_ts_adv", "cycle", "identity", "g_total", "d_s", "d_t"}
    assert all(np.isfinite(v[-1]) for v in logs.values())
    assert model.step_count() == 2 and all(int(model.optimizers[k].iterations) == 2 for k in cg.NETWORKS)
    for k in cg.NETWORKS:
        assert any(np.any(a != b) for a, b in zip(before[k], getattr(model, k).get_weights())), k
    assert int(model.pool_t.count.value) == 8


def test_lr_decay_follows_its_formula_and_stops_every_network_after_the_last_step():
    from daaa_tf.method.schedules import LinearDecay, cyclegan_lr

    # --cyclegan_lr_decay=0.5 of 8 steps (-1 to 8 here): eta0 up to step 4, then 1 - (step - 4) / 4: 0 at step 8
    expected = [1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25, 0]
    sched = cyclegan_lr(2e-4, 8, 0.5)
    np.testing.assert_allclose([float(sched(s)) for s in range(-1, 9)], [2e-4 * e for e in expected], rtol=1e-6)
    assert cyclegan_lr(2e-4, 8, 1.0) == 2e-4 and float(LinearDecay(1.0, 3, 0)(1)) == pytest.approx(2 / 3)
    # decay from the start over 3 steps: steps 0-2 train, a 4th step (LR 0) leaves every network as it was,
    # where a constant LR would move them
    model = cg.build_cyclegan(cg.CycleGANConfig(**TINY, steps=3, lr_decay=0.0, noise_shape=(2, 2, 2)))
    src, tgt = _domains()
    data = training_pairs((src.dataset(), 14), (tgt.dataset(), 10), 4)
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
    after3 = {k: [w.copy() for w in getattr(model, k).get_weights()] for k in model.networks}
    assert set(after3) == {"g_st", "g_ts", "d_s", "d_t", "enc"}
    model.fit(data, steps_per_epoch=1, epochs=1, verbose=0)
    for k, weights in after3.items():
        for a, b in zip(weights, getattr(model, k).get_weights()):
            np.testing.assert_array_equal(a, b, err_msg=k)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_step(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = cg.build_cyclegan(cg.CycleGANConfig(**TINY))
        src, tgt = _domains()
        logs = model.fit(training_pairs((src.dataset(), 14), (tgt.dataset(), 10), 4),
                         steps_per_epoch=1, epochs=1, verbose=0).history
        assert all(np.isfinite(v[-1]) for v in logs.values())
        assert model.g_st(np.zeros((1, 8, 8, 3), "float32")).dtype == "float32"
        assert isinstance(model.optimizers["d_s"], keras.optimizers.LossScaleOptimizer) == (
            policy == "mixed_float16")
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _state(model):
    out = {k: getattr(model, k).get_weights() for k in cg.NETWORKS}
    out["opt"] = [v.numpy() for k in cg.NETWORKS for v in model.optimizers[k].variables]
    out["pool"] = [model.pool_s.buffer.value.numpy(), model.pool_t.buffer.value.numpy()]
    return out


def test_resume_matches_uninterrupted_run_and_translates(tmp_path):
    src, tgt = _domains()
    cfg = cg.CycleGANConfig(**TINY, pool_size=3, steps=5, steps_per_epoch=3)
    keras.utils.set_random_seed(0)
    straight, m = stage.train_cyclegan(cfg, src, tgt, str(tmp_path / "a"), verbose=0)
    assert m["step"] == 5 and m["complete"] and [h["step"] for h in m["history"]] == [3, 5]
    keras.utils.set_random_seed(0)
    first, _ = stage.train_cyclegan(cg.CycleGANConfig(**{**cfg.__dict__, "steps": 3}), src, tgt,
                                    str(tmp_path / "b"), verbose=0)
    del first  # "killed" after the step-3 checkpoint
    keras.utils.set_random_seed(1)  # another initialisation: the checkpoint must overwrite all of it
    resumed, m2 = stage.train_cyclegan(cfg, src, tgt, str(tmp_path / "b"), verbose=0)
    assert m2["step"] == 5 and [h["step"] for h in m2["history"]] == [3, 5]
    a, b = _state(straight), _state(resumed)
    for key in a:
        for x, y in zip(a[key], b[key]):
            np.testing.assert_allclose(x, y, atol=1e-6, err_msg=key)
    again, m3 = stage.train_cyclegan(cfg, src, tgt, str(tmp_path / "b"), verbose=0)  # complete: no training
    assert m3["step"] == 5 and m3["images_per_s_this_run"] is None
    # Sample grid: 8 rows of samples, 6 images + a 4-pixel gap per row.
    grid = tf.io.decode_png(open(tmp_path / "a" / "samples.png", "rb").read()).numpy()
    assert grid.shape == (8 * 8, 6 * 8 + 4, 3)
    assert os.path.exists(tmp_path / "a" / "samples" / "step_0000005.png")
    assert os.path.exists(tmp_path / "a" / "g_st.keras") and os.listdir(tmp_path / "a" / "tensorboard")
    # Translation into pair shards.
    pairs_dir = str(tmp_path / "pairs")
    info = stage.translate_domains(straight, src, tgt, pairs_dir, batch_size=4, shard_size=6, progress=False)
    assert info["translated"] == 24 and info["shards"] == {"source": 3, "target": 2}
    manifest = pairs.read_manifest(pairs_dir, verify=True)
    assert manifest["fingerprint"]["step"] == 5 and manifest["image_shape"] == [8, 8, 3]
    batch = pairs.parse_pairs(next(iter(pairs.pair_records(pairs_dir, "target").batch(10))))
    np.testing.assert_array_equal(batch["image"].numpy(), tgt.images)
    # The shards come from a tf.function over batches, the reference from one eager call: the float outputs
    # agree to float32 rounding, so a value on a .5 boundary of the uint8 rounding may land on either side
    # (seen on one 2-core machine: 1 of 1,920 values off by 1). Any real error (wrong generator, wrong order,
    # wrong range) moves far more values by far more than 1.
    stored = batch["translated"].numpy().astype(np.int32)
    expected = straight.translate(tgt.images, "ts").numpy().astype(np.int32)
    off = np.abs(stored - expected)
    assert off.max() <= 1 and (off > 0).mean() <= 0.01, (off.max(), (off > 0).sum())
    assert set(batch["label"].numpy()) == {-1}


def test_conform_images_resizes_or_fails():
    gray = tf.data.Dataset.from_tensor_slices((np.zeros((3, 28, 28, 1), np.uint8), np.zeros(3, np.int32)))
    fixed = conform_images(gray, 32, "resize")
    x, _ = next(iter(fixed))
    assert x.shape == (32, 32, 3) and x.dtype == tf.uint8
    with pytest.raises(ValueError, match="--target: images are 28x28x1.*on_size_mismatch"):
        conform_images(gray, 32, "error", name="--target")
    ok = tf.data.Dataset.from_tensor_slices((np.zeros((2, 32, 32, 3), np.uint8), np.zeros(2, np.int32)))
    assert conform_images(ok, 32, "error").element_spec[0].shape == (32, 32, 3)


def test_bad_settings():
    with pytest.raises(ValueError, match="--cycle_weight"):
        cg.build_cyclegan(cg.CycleGANConfig(**{**TINY, "cycle_weight": -1}))
    with pytest.raises(ValueError, match="--gan_loss"):
        cg.build_cyclegan(cg.CycleGANConfig(**{**TINY, "gan_loss": "wgan"}))
    with pytest.raises(ValueError, match="optimizers missing"):
        cg.build_cyclegan(cg.CycleGANConfig(**TINY)).compile({"g_st": keras.optimizers.Adam()})
