"""The paper's 4-conv digit CNN (section 4.2): three feature convs (attention taps) + a conv classifier."""

import keras
from keras import layers

from daaa_tf import UserError
from daaa_tf.settings import DIGIT_WIDTHS


def build_digit_cnn(num_classes=10, input_shape=(32, 32, 3), widths=DIGIT_WIDTHS, name="digit_cnn"):
    """Returns a functional model ``x -> {"logits": [N, K], "taps": [F_1, F_2, F_3]}``.

    conv1 5x5/32 -> pool -> conv2 5x5/64 -> pool -> conv3 3x3/128 -> pool -> conv4 (classifier, K channels,
    kernel = remaining spatial size) -> global average pooling. The taps are the three feature convs after
    their ReLU. Input: float32 images in [-1, 1] (see ``daaa_tf.models.preprocess``).
    """
    if input_shape[0] % 8 or input_shape[1] % 8:
        raise UserError(f"digit CNN input height/width must be multiples of 8, got {input_shape}")
    inputs = keras.Input(input_shape, name="image")
    taps = []
    x = inputs
    for i, (width, kernel) in enumerate(zip(widths, (5, 5, 3)), start=1):
        x = layers.Conv2D(width, kernel, padding="same", activation="relu", name=f"conv{i}")(x)
        taps.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Conv2D(num_classes, (input_shape[0] // 8, input_shape[1] // 8), name="conv4_classifier")(x)
    logits = layers.GlobalAveragePooling2D(name="logits", dtype="float32")(x)
    return keras.Model(inputs, {"logits": logits, "taps": taps}, name=name)


def digit_widths(model):
    """The feature-conv widths of a digit CNN built by ``build_digit_cnn`` (read from its conv1..conv3)."""
    return tuple(int(model.get_layer(f"conv{i}").filters) for i in (1, 2, 3))
