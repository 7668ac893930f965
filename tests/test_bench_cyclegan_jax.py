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
