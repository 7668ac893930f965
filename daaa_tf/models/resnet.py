"""ResNet-50 with attention taps (paper section 4.2, Office-31)."""

import os

import keras
from keras import layers

from daaa_tf import MissingFileError, UserError

STEM_CONV = "conv1_conv"


def _resolve_weights(weights):
    if weights in (None, "none", ""):
        return None
    if weights == "imagenet":
        return "imagenet"
    if not os.path.isfile(weights):
        raise MissingFileError(f"--weights: no such file {weights!r} (expected 'imagenet', 'none' or a "
                               "Keras ResNet50 no-top weights file, e.g. resnet50_weights_tf_dim_ordering_"
                               "tf_kernels_notop.h5)")
    return weights


def tap_layer_names(base, attention_layers="all_conv"):
    """Names of the tapped layers of a Keras ResNet50 base.

    ``all_conv``: every Conv2D except the stem conv (the paper: all conv layers except the first);
    ``blocks``: the 16 residual block outputs; otherwise a comma-separated list or sequence of names.
    """
    if attention_layers == "all_conv":
        return [lyr.name for lyr in base.layers if isinstance(lyr, layers.Conv2D) and lyr.name != STEM_CONV]
    if attention_layers == "blocks":
        return [lyr.name for lyr in base.layers if lyr.name.endswith("_out") and "block" in lyr.name]
    names = attention_layers.split(",") if isinstance(attention_layers, str) else list(attention_layers)
    known = {lyr.name for lyr in base.layers}
    missing = [n for n in names if n not in known]
    if missing:
        raise UserError(f"--attention_layers: unknown ResNet-50 layer(s) {missing}; "
                        "use all_conv, blocks or names such as conv3_block1_out")
    return names


def build_resnet50(num_classes=31, input_shape=(224, 224, 3), weights=None, attention_layers="all_conv",
                   name="resnet50"):
    """Returns ``x -> {"logits", "taps"}``: ResNet50(include_top=False) + GAP + a new Dense(K) head.

    Input: ResNet-50 preprocessed float32 images (``keras.applications.resnet50.preprocess_input``).
    """
    base = keras.applications.ResNet50(include_top=False, weights=_resolve_weights(weights),
                                       input_shape=input_shape)
    taps = [base.get_layer(n).output for n in tap_layer_names(base, attention_layers)]
    x = layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    logits = layers.Dense(num_classes, name="head", dtype="float32")(x)
    return keras.Model(base.input, {"logits": logits, "taps": taps}, name=name)


HEAD_LAYERS = ("head",)
