"""Test setup: two logical CPU devices (for MirroredStrategy tests), quiet TF logs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from daaa_tf.runtime import split_cpu  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
if not tf.config.get_logical_device_configuration(_cpu):
    split_cpu(2)
