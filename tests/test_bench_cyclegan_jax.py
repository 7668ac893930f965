"""bench/cyclegan_jax.py's two halves that run here: the packed images reproduce the CycleGAN stage's input, and
generator weights written in several files load back in order (its JAX training step runs on a GPU machine only)."""

import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf

from daaa_tf.data.pipelines import conform_images
from daaa_tf.models.gan_nets import build_generator

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "cyclegan_jax.py")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("cyclegan_jax", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines no absl flags on import
    return module


@pytest.mark.parametrize("channels", [1, 3])
def test_packed_images_resize_to_the_stage_input(bench, channels):
    rng = np.random.default_rng(channels)
    images = rng.integers(0, 256, (16, 28, 28, channels), dtype=np.uint8)
    images[:4] = rng.choice([0, 255], (4, 28, 28, channels))  # hard edges: the largest rounding margins
    ds = tf.data.Dataset.from_tensor_slices((images, np.zeros(16, np.int64)))
    staged = np.stack([x.numpy() for x, _ in conform_images(ds, 32)])
    mine = bench.resize(images[..., 0] if channels == 1 else images, bench.resize_matrix(28, 32))
    mine = np.repeat(mine[..., None], 3, -1) if channels == 1 else mine
    assert mine.shape == staged.shape == (16, 32, 32, 3)
    assert int((mine != staged).sum()) == 0


def test_weights_in_several_files_load_back_in_order(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "FILE_BYTES", 20_000)  # forces several files per generator
    nets = {k: build_generator(16, 4, 2, name=k) for k in ("g_st", "g_ts")}
    files = bench.save_weights(nets, str(tmp_path))
    assert sum(f.startswith("g_st.") for f in files) > 2
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    for k, net in nets.items():
        fresh = build_generator(16, 4, 2, name=k)
        assert not np.allclose(fresh(x).numpy(), net(x).numpy())
        bench.load_weights(fresh, str(tmp_path))
        np.testing.assert_array_equal(fresh(x).numpy(), net(x).numpy())
    (tmp_path / "g_st.0.npz").unlink()
    with pytest.raises(SystemExit, match="arrays for g_st"):
        bench.load_weights(build_generator(16, 4, 2, name="g_st"), str(tmp_path))


def test_noise_inputs_float16_weights_and_the_translator(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "noise_shape", lambda: (4, 4, 2))
    images = np.random.default_rng(1).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    x, z = bench._inputs("g_st", images)
    np.testing.assert_allclose(x, images / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(z, bench._inputs("g_st", images)[1])  # the parity probe's fixed draw
    assert z.shape == (3, 4, 4, 2)
    assert not isinstance(bench._inputs("g_ts", images), list)  # G^TS takes no noise
    g_st = build_generator(16, 4, 1, name="g_st", noise_shape=(4, 4, 2))
    g_ts = build_generator(16, 4, 1, name="g_ts")
    bench.save_weights({"g_st": g_st, "g_ts": g_ts}, str(tmp_path), "float16")
    half = build_generator(16, 4, 1, name="g_st", noise_shape=(4, 4, 2))
    bench.load_weights(half, str(tmp_path))
    for w, h in zip(g_st.get_weights(), half.get_weights()):
        np.testing.assert_array_equal(h, w.astype(np.float16).astype(np.float32))
    gap = np.abs(half([x, z]).numpy() - g_st([x, z]).numpy()).max()
    assert 0 < gap < 0.01
    first = bench._Translator({"g_st": g_st, "g_ts": g_ts}, 1, seed=5)
    fn = tf.function(first.translate)  # as translate_domains calls it
    a, b = fn(images).numpy(), fn(images).numpy()
    assert a.dtype == np.uint8 and np.abs(a.astype(int) - b).mean() > 0  # a fresh draw per batch
    again = bench._Translator({"g_st": g_st, "g_ts": g_ts}, 1, seed=5)
    np.testing.assert_array_equal(a, tf.function(again.translate)(images).numpy())
