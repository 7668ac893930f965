"""CycleGAN networks (paper section 3.1, Zhu et al. 2017): the ResNet generator and the PatchGAN discriminator.

Generator: c7s1-k, d2k, d4k, n x R4k, u2k, uk, c7s1-3, tanh, with reflection padding and instance norm
(``GroupNormalization(groups=-1)``; tensorflow-addons does not import under Keras 3). Upsampling is a
nearest-neighbour resize followed by a 3x3 convolution by default (``upsample="resize"``); transposed
convolutions (``"transpose"``, the original recipe) leave checkerboard artefacts on small digits.

A generator built with ``noise_shape`` (h, w, c) also takes a noise tensor of that shape, resized bilinearly to
the image's size and stacked on its channels (a G^ST that can draw backgrounds independent of the digit, as in
PixelDA / BicycleGAN); ``build_encoder`` maps an image back to such a tensor (the latent half of the cycle).

Discriminator: PatchGAN, C_w (no norm) - C_2w - ... (stride 2) - C (stride 1) - 1-channel conv: one real/fake
logit per patch. Both networks take float images in [-1, 1]; their outputs are float32 under mixed precision.
``ImagePool``: the discriminators' history of past fakes.
"""

import keras
import tensorflow as tf
from keras import layers

from daaa_tf import MissingFileError, UserError

UPSAMPLING = ("resize", "transpose")


def to_float(images):
    """uint8 [0, 255] -> float32 [-1, 1] (the generators' range)."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(images):
    """float [-1, 1] -> uint8, rounded."""
    return tf.cast(tf.round(tf.clip_by_value((tf.cast(images, tf.float32) + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


@keras.saving.register_keras_serializable(package="daaa_tf")
class ReflectionPad2D(layers.Layer):
    """Pads height and width by ``padding`` pixels on each side, mirroring the border (no edge repeat)."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        p = self.padding
        return keras.ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        grow = lambda d: None if d is None else d + 2 * self.padding
        return (n, grow(h), grow(w), c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def instance_norm(name):
    """Instance normalisation: one group per channel (equals it to ~5e-7; docs/design.md, "Platform facts")."""
    return layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)


def _conv_norm_relu(x, filters, kernel, strides, name, pad_reflect=0, act="relu"):
    if pad_reflect:
        x = ReflectionPad2D(pad_reflect, name=f"{name}_pad")(x)
    padding = "valid" if pad_reflect else "same"
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=f"{name}_conv")(x)
    x = instance_norm(f"{name}_norm")(x)
    if act == "relu":
        return layers.ReLU(name=f"{name}_relu")(x)
    return x


def _residual_block(x, filters, name):
    """R: two 3x3 reflection-padded conv + instance norm layers with a skip connection."""
    h = _conv_norm_relu(x, filters, 3, 1, f"{name}_a", pad_reflect=1)
    h = _conv_norm_relu(h, filters, 3, 1, f"{name}_b", pad_reflect=1, act=None)
    return layers.Add(name=f"{name}_add")([x, h])


def _upsample(x, filters, upsample, name):
    if upsample == "resize":
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_resize")(x)
        return _conv_norm_relu(x, filters, 3, 1, name, pad_reflect=1)
    x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False, name=f"{name}_tconv")(x)
    x = instance_norm(f"{name}_norm")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _sides(image_size):
    return (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)


def build_generator(image_size, width=32, num_blocks=3, upsample="resize", channels=3, name="generator",
                    noise_shape=None):
    """ResNet generator c7s1-k, d2k, d4k, ``num_blocks`` x R4k, u2k, uk, c7s1-3, tanh (k = ``width``).

    ``image_size``: int or (H, W), each a multiple of 4. Output: float32 in [-1, 1], same shape as the input.
    ``noise_shape``: (h, w, c) dividing the image's sides: the model takes [image, noise] (module docstring).
    """
    h, w = _sides(image_size)
    if h % 4 or w % 4 or min(h, w) < 8:
        raise UserError(f"--image_size: the CycleGAN generator needs sides that are multiples of 4 and >= 8, "
                        f"got {h}x{w}")
    if upsample not in UPSAMPLING:
        raise UserError(f"--cyclegan_upsample: expected one of {UPSAMPLING}, got {upsample!r}")
    if width < 1 or num_blocks < 0:
        raise UserError(f"--gen_width must be >= 1 and --gen_blocks >= 0, got {width}, {num_blocks}")
    inputs = keras.Input((h, w, channels), name="image")
    x = inputs
    if noise_shape is not None:
        nh, nw, nc = noise_shape
        if h % nh or w % nw or nc < 1:
            raise UserError(f"--noise_shape: {noise_shape} must divide the image's {h}x{w} and have >= 1 channel")
        noise = keras.Input((nh, nw, nc), name="noise")
        up = layers.UpSampling2D((h // nh, w // nw), interpolation="bilinear", name="noise_resize")(noise)
        x = layers.Concatenate(name="noise_concat")([x, up])
        inputs = [inputs, noise]
    x = _conv_norm_relu(x, width, 7, 1, "c7s1", pad_reflect=3)
    x = _conv_norm_relu(x, 2 * width, 3, 2, "d2k")
    x = _conv_norm_relu(x, 4 * width, 3, 2, "d4k")
    for i in range(num_blocks):
        x = _residual_block(x, 4 * width, f"res{i + 1}")
    x = _upsample(x, 2 * width, upsample, "u2k")
    x = _upsample(x, width, upsample, "uk")
    x = ReflectionPad2D(3, name="out_pad")(x)
    x = layers.Conv2D(channels, 7, padding="valid", name="out_conv")(x)
    outputs = layers.Activation("tanh", dtype="float32", name="out_tanh")(x)
    return keras.Model(inputs, outputs, name=name)


def build_encoder(image_size, noise_shape, width=64, channels=3, name="encoder"):
    """Image -> noise tensor of ``noise_shape`` (h, w, c): stride-2 4x4 convs (LeakyReLU 0.2) down to (h, w), then a
    1x1 conv to c channels (float32, unbounded). The image's sides must be the noise's times a power of 2."""
    hh, ww = _sides(image_size)
    nh, nw, nc = noise_shape
    steps = (hh // nh).bit_length() - 1
    if hh != nh << steps or ww != nw << steps:
        raise UserError(f"--noise_shape: {noise_shape} must be the image's {hh}x{ww} halved a whole number of times")
    inputs = keras.Input((hh, ww, channels), name="image")
    x = inputs
    for i in range(steps):
        x = layers.Conv2D(width * min(2 ** i, 4), 4, strides=2, padding="same", name=f"e{i + 1}_conv")(x)
        x = layers.LeakyReLU(0.2, name=f"e{i + 1}_lrelu")(x)
    outputs = layers.Conv2D(nc, 1, dtype="float32", name="code")(x)
    return keras.Model(inputs, outputs, name=name)


def build_discriminator(image_size, width=64, num_layers=3, channels=3, name="discriminator"):
    """PatchGAN: C_w (no norm), then C_{2^i w} (stride 2, capped at 8w) for i < ``num_layers``, one stride-1
    C block and a 1-channel 4x4 conv. LeakyReLU 0.2. Output: float32 patch logits [N, H/2^n, W/2^n, 1].
    """
    h, w = _sides(image_size)
    if num_layers < 1 or min(h, w) < 2 ** num_layers:
        raise UserError(f"--disc_layers: need 1 <= layers and 2^layers <= image side, got {num_layers} for {h}x{w}")
    inputs = keras.Input((h, w, channels), name="image")
    x = layers.Conv2D(width, 4, strides=2, padding="same", name="c1_conv")(inputs)
    x = layers.LeakyReLU(0.2, name="c1_lrelu")(x)
    for i in range(1, num_layers + 1):
        strides = 2 if i < num_layers else 1
        x = layers.Conv2D(width * min(2 ** i, 8), 4, strides=strides, padding="same", use_bias=False,
                          name=f"c{i + 1}_conv")(x)
        x = instance_norm(f"c{i + 1}_norm")(x)
        x = layers.LeakyReLU(0.2, name=f"c{i + 1}_lrelu")(x)
    outputs = layers.Conv2D(1, 4, padding="same", dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


class ImagePool(keras.layers.Layer):
    """History of ``size`` past fakes shown to a discriminator (Shrivastava et al.; CycleGAN's pool of 50).

    While the pool fills, each fake is stored and shown. Then each fake is, with probability 1/2, swapped with
    a random stored one (the old one is shown) or shown as is. Random draws are stateless in (seed, step,
    replica), so a resumed run repeats them. Under a strategy each replica keeps its own pool (on-read vars).
    """

    def __init__(self, size, image_shape, seed=0, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.size, self.seed = int(size), int(seed)
        self.buffer = keras.Variable("zeros", shape=(self.size, *image_shape), dtype="float32", trainable=False,
                                     synchronization="on_read", aggregation="only_first_replica", name="buffer")
        self.count = keras.Variable(0, dtype="int32", trainable=False, synchronization="on_read",
                                    aggregation="only_first_replica", name="count")
        self.built = True

    def call(self, fakes, step):
        fakes = tf.stop_gradient(tf.cast(fakes, tf.float32))
        n, size = tf.shape(fakes)[0], self.size
        ctx = tf.distribute.get_replica_context()
        replica = ctx.replica_id_in_sync_group if ctx is not None else 0
        seed = tf.stack([tf.cast(self.seed * 1009 + replica, tf.int64), tf.cast(step, tf.int64)])
        coin = tf.random.stateless_uniform([n], seed=seed)
        slot = tf.random.stateless_uniform([n], seed=seed + [0, 1 << 40], minval=0, maxval=size, dtype=tf.int32)
        position = tf.cast(self.count.value, tf.int32) + tf.range(n)
        fill = position < size
        swap = tf.logical_and(tf.logical_not(fill), coin < 0.5)
        index = tf.where(fill, position, slot)
        buffer = tf.convert_to_tensor(self.buffer.value)
        shown = tf.where(swap[:, None, None, None], tf.gather(buffer, tf.minimum(index, size - 1)), fakes)
        target = tf.where(tf.logical_or(fill, swap), index, size)  # row ``size`` is a discarded dummy
        padded = tf.concat([buffer, tf.zeros_like(buffer[:1])], 0)
        self.buffer.assign(tf.tensor_scatter_nd_update(padded, target[:, None], fakes)[:size])
        self.count.assign(tf.minimum(tf.cast(self.count.value, tf.int32) + n, size))
        return shown


def load_generator(path):
    """Loads a generator saved by trainers.cyclegan (``<run_dir>/cyclegan/g_st.keras`` or ``g_ts.keras``)."""
    if not tf.io.gfile.exists(path):
        raise MissingFileError(f"no generator at {path!r} (expected g_st.keras / g_ts.keras from trainers.cyclegan)")
    return keras.models.load_model(path, compile=False)
