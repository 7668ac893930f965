"""CycleGAN networks: shapes, ranges, reflection padding, instance norm, serialization, bad sizes."""

import keras
import numpy as np
import pytest

from daaa_tf.models.gan_nets import ReflectionPad2D, build_discriminator, build_generator, load_generator


@pytest.mark.parametrize("upsample", ["resize", "transpose"])
def test_generator_shape_and_range(upsample):
    g = build_generator(16, width=4, num_blocks=2, upsample=upsample)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    y = g(x).numpy()
    assert y.shape == (2, 16, 16, 3) and y.dtype == np.float32
    assert np.all(np.abs(y) <= 1.0)
    names = [lyr.name for lyr in g.layers]
    assert sum(n.endswith("_add") for n in names) == 2  # residual blocks
    assert ("u2k_resize" in names) == (upsample == "resize")
    assert ("u2k_tconv" in names) == (upsample == "transpose")


def test_generator_non_square_and_bad_sizes():
    assert build_generator((8, 12), width=2, num_blocks=1).output_shape == (None, 8, 12, 3)
    with pytest.raises(ValueError, match="multiples of 4"):
        build_generator(18, width=2)
    with pytest.raises(ValueError, match="cyclegan_upsample"):
        build_generator(16, upsample="deconv")


def test_discriminator_patch_logits():
    d = build_discriminator(32, width=4, num_layers=3)
    out = d(np.zeros((3, 32, 32, 3), "float32"))
    assert out.shape == (3, 4, 4, 1) and out.dtype == "float32"
    assert build_discriminator(32, width=4, num_layers=2).output_shape == (None, 8, 8, 1)
    with pytest.raises(ValueError, match="disc_layers"):
        build_discriminator(8, num_layers=4)


def test_reflection_padding_and_instance_norm():
    x = np.arange(2 * 4 * 5 * 3, dtype="float32").reshape(2, 4, 5, 3)
    got = ReflectionPad2D(2)(x).numpy()
    np.testing.assert_array_equal(got, np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect"))
    norm = keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)
    y = norm(x * np.array([1, 3, 7], "float32")).numpy()
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-5)  # per sample and channel
    np.testing.assert_allclose(y.std(axis=(1, 2)), 1, atol=1e-3)


def test_generator_saves_and_loads(tmp_path):
    g = build_generator(8, width=2, num_blocks=1)
    path = str(tmp_path / "g.keras")
    g.save(path)
    loaded = load_generator(path)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x).numpy(), g(x).numpy(), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="no generator"):
        load_generator(str(tmp_path / "missing.keras"))


def test_noise_generator_takes_noise_resized_onto_the_image():
    from daaa_tf.models.gan_nets import build_encoder

    net = build_generator(16, width=4, num_blocks=1, noise_shape=(4, 4, 2))
    assert [tuple(i.shape) for i in net.inputs] == [(None, 16, 16, 3), (None, 4, 4, 2)]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    z1, z2 = rng.standard_normal((2, 2, 4, 4, 2)).astype(np.float32)
    out = net([x, z1]).numpy()
    assert out.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(out, net([x, z1]).numpy())
    assert np.abs(out - net([x, z2]).numpy()).mean() > 1e-3  # the noise reaches the output
    stacked = keras.Model(net.inputs, net.get_layer("noise_concat").output)([x, z1]).numpy()
    np.testing.assert_array_equal(stacked[..., :3], x)
    import tensorflow as tf

    np.testing.assert_allclose(stacked[..., 3:], tf.image.resize(z1, (16, 16), "bilinear").numpy(), atol=1e-5)
    code = build_encoder(16, (4, 4, 2), width=4)(x).numpy()
    assert code.shape == (2, 4, 4, 2)


def test_noise_and_encoder_shapes_are_checked():
    from daaa_tf import UserError
    from daaa_tf.models.gan_nets import build_encoder

    with pytest.raises(UserError, match="--noise_shape"):
        build_generator(16, width=4, num_blocks=1, noise_shape=(3, 4, 2))
    with pytest.raises(UserError, match="--noise_shape"):
        build_encoder(16, (3, 3, 2))
    with pytest.raises(UserError, match="--noise_shape"):
        build_encoder(24, (4, 4, 2))  # 24 = 4 * 6: not a power-of-two ratio
