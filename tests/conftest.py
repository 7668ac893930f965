"""Test setup: two logical CPU devices (for MirroredStrategy tests), quiet TF logs."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests never touch the user's ~/.cache/daaa_tf: one fresh cache per test session (the demo builds in seconds).
os.environ["DAAA_TF_CACHE"] = tempfile.mkdtemp(prefix="daaa_tf_test_cache_")
atexit.register(shutil.rmtree, os.environ["DAAA_TF_CACHE"], ignore_errors=True)

import tensorflow as tf  # noqa: E402

from daaa_tf.runtime import split_cpu  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
if not tf.config.get_logical_device_configuration(_cpu):
    split_cpu(2)


import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _float32_policy_after_each_test():
    """A stage run in-process sets the global dtype policy (e.g. the CycleGAN's mixed_bfloat16); no test may
    leave it to the next one (a bfloat16 policy changed the DAAA gradient check's numbers by 9 %)."""
    yield
    keras.mixed_precision.set_global_policy("float32")
