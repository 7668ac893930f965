"""Classifier networks. Every classifier is one functional model ``x -> {"logits": [N, K], "taps": [...]}``.

``build_classifier`` picks the architecture; ``preprocess`` maps uint8 images to the model's input range;
``model_spec`` reads back what a built (or loaded) classifier is: the one place that knows how.
"""

import keras
import tensorflow as tf

from daaa_tf import MissingFileError, UserError
from daaa_tf.models.digit_cnn import build_digit_cnn, digit_widths
from daaa_tf.models.resnet import HEAD_LAYERS, build_resnet50
from daaa_tf.settings import DIGIT_WIDTHS

ARCHS = ("digit_cnn", "resnet50")


def build_classifier(arch, num_classes, image_size, weights=None, attention_layers="all_conv", widths=None):
    """Builds ``arch`` ('digit_cnn' | 'resnet50') for ``image_size`` (an int or (H, W)) RGB images.

    ``widths``: the digit CNN's three feature-conv widths (None = the default; ignored by ResNet-50). Stages after
    the source stage pass ``model_spec(source)["widths"]``, so the source network is the one place they are set.
    """
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if arch == "digit_cnn":
        return build_digit_cnn(num_classes, (h, w, 3), tuple(widths or DIGIT_WIDTHS))
    if arch == "resnet50":
        return build_resnet50(num_classes, (h, w, 3), weights=weights, attention_layers=attention_layers)
    raise UserError(f"--arch: unknown architecture {arch!r}; expected one of {ARCHS}")


def preprocess(images, arch):
    """uint8 (or float 0..255) [N, H, W, 3] -> the model's input: [-1, 1] for digits, caffe-style for ResNet."""
    x = tf.cast(images, tf.float32)
    if arch == "resnet50":
        return keras.applications.resnet50.preprocess_input(x)
    return x / 127.5 - 1.0


def head_variable_ids(model):
    """ids of the variables of the new classification head (trained at a higher LR under SGD)."""
    out = set()
    for lyr in model.layers:
        if lyr.name in HEAD_LAYERS:
            out.update(id(v) for v in lyr.trainable_variables)
    return out


def load_classifier(path):
    """Loads a classifier saved with ``model.save(path)``, with a one-line error when it is not one."""
    if not tf.io.gfile.exists(path):
        raise MissingFileError(f"no model at {path!r} (expected a .keras file written by trainers.source "
                                "or trainers.adapt)")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 - one clear line instead of a deep traceback
        raise UserError(f"{path!r} is not a loadable Keras model: {type(e).__name__}: {e}") from None
    if not isinstance(model.output, dict) or "logits" not in model.output:
        raise UserError(f"{path!r} is not a daaa-tf classifier (expected outputs {{'logits', 'taps'}})")
    return model


def model_spec(model):
    """What a classifier is: {"arch", "num_classes", "image_size": (H, W), "tap_names": [layer names], "widths"}.

    ``widths``: the digit CNN's feature-conv widths (``--digit_widths`` of the source stage); None for ResNet-50.

    The architecture is the model's name (``build_classifier`` names every model after its ``arch``); export,
    report and the baselines read it here instead of guessing from layer names or shapes.
    """
    if model.name not in ARCHS:
        raise UserError(f"model {model.name!r} is not one of {ARCHS} (was it built by daaa_tf.models?)")
    shape = tuple(model.input.shape)
    if len(shape) != 4 or shape[1] is None or shape[2] is None or shape[3] != 3:
        raise UserError(f"model input shape {shape} is not [N, H, W, 3] with a fixed H and W")
    by_output = {id(lyr.output): lyr.name for lyr in model.layers}
    taps = [by_output.get(id(t), f"tap{i}") for i, t in enumerate(model.output["taps"])]
    return {"arch": model.name, "num_classes": int(model.output["logits"].shape[-1]),
            "image_size": (int(shape[1]), int(shape[2])), "tap_names": taps,
            "widths": digit_widths(model) if model.name == "digit_cnn" else None}
