"""Does the translation keep digit identity? (never run as a test). Prints one JSON object per line.

    python bench/cyclegan_pairs_quality.py --pairs_dir=runs/demo/pairs --target=demo

Trains the digit CNN (Adam 1e-3) once on the real sources x_s (S) and once on their translations
G^ST(x_s) with the same labels (T_f), both read from the pair shards, and reports the target-test accuracy
of each (paper, real MNIST -> MNIST-M: S 45.6, T_f 75.0). T_f should clearly beat S.

With ``--source_model`` it first reports label preservation: the frozen source network's accuracy on x_s,
G^ST(x_s), x_t and G^TS(x_t) against the true labels (the target pairs carry y_t when the target domain is
labelled). A translation that keeps the digit keeps G^TS(x_t) readable by the source network.
It also reports how varied the synthetic targets are: the mean absolute difference (0-255) between two random
images of G^ST(x_s), against the same for the real targets x_t. A CycleGAN that paints one background behind every
digit keeps labels but scores low here, and its T_f learns little about the real clutter.
``--classifiers=false`` skips the two classifier trainings.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from daaa_tf.data import load_domain  # noqa: E402
from daaa_tf.data.pairs import pair_records, parse_pairs, read_manifest  # noqa: E402
from daaa_tf.models import build_classifier, preprocess  # noqa: E402
from daaa_tf.report.translations import diversity as translation_diversity  # noqa: E402
from daaa_tf.report.translations import source_net_accuracy  # noqa: E402

flags.DEFINE_string("pairs_dir", "runs/demo/pairs", "Pair shards written by trainers.cyclegan.")
flags.DEFINE_string("target", "demo", "Target domain spec (its test split is evaluated).")
flags.DEFINE_integer("image_size", 32, "Image side.")
flags.DEFINE_integer("epochs", 8, "Classifier epochs.")
flags.DEFINE_integer("batch_size", 64, "Classifier batch size.")
flags.DEFINE_list("seeds", ["0", "1"], "Classifier seeds (the mean is reported too).")
flags.DEFINE_string("source_model", "", "The frozen source network (source/model.keras): label preservation.")
flags.DEFINE_boolean("classifiers", True, "Train the S and T_f classifiers.")
flags.DEFINE_list("train_on", ["S", "T_f"], "Which classifiers --classifiers trains: S (on x_s), T_f (on G^ST(x_s)).")
FLAGS = flags.FLAGS


def load_pairs(pairs_dir, kind="source"):
    m = read_manifest(pairs_dir)
    batches = [parse_pairs(b) for b in pair_records(pairs_dir, kind).batch(1024)]
    cat = {k: np.concatenate([b[k].numpy() for b in batches]) for k in ("image", "translated", "label")}
    assert len(cat["label"]) == m["counts"][kind]
    return cat


def label_preservation(source_model, pairs_dir):
    """Source-net accuracy on both sides of every pair, against the true labels."""
    from daaa_tf.models import load_classifier

    net = load_classifier(source_model)
    for kind, names in (("source", ("x_s", "G_ST(x_s)")), ("target", ("x_t", "G_TS(x_t)"))):
        data = load_pairs(pairs_dir, kind) if kind == "target" else load_pairs(pairs_dir)
        if (data["label"] < 0).any():
            print(json.dumps({"measure": "label_preservation", "kind": kind, "skipped": "no labels"}), flush=True)
            continue
        for name, key in zip(names, ("image", "translated")):
            print(json.dumps({"measure": "source_net_accuracy", "on": name, "images": len(data[key]),
                              "accuracy": source_net_accuracy(net, data[key], data["label"])}), flush=True)


def diversity(pairs_dir, pairs=2000, seed=0):
    """Mean |a - b| over random pairs of images: G^ST(x_s) against the real targets x_t."""
    rng = np.random.default_rng(seed)
    source, target = load_pairs(pairs_dir), load_pairs(pairs_dir, "target")
    for name, images in (("G_ST(x_s)", source["translated"]), ("x_t", target["image"])):
        print(json.dumps({"measure": "diversity", "on": name, "random_pairs": pairs,
                          "mean_abs_difference": translation_diversity(images, rng, pairs)}), flush=True)


def accuracy(train_x, train_y, test_x, test_y, seed):
    keras.utils.set_random_seed(seed)
    model = build_classifier("digit_cnn", 10, FLAGS.image_size)
    logits = keras.Model(model.input, model.output["logits"])
    logits.compile(keras.optimizers.Adam(1e-3),
                   keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    logits.fit(preprocess(train_x, "digit_cnn"), train_y, batch_size=FLAGS.batch_size, epochs=FLAGS.epochs,
               shuffle=True, verbose=0)
    return float(logits.evaluate(preprocess(test_x, "digit_cnn"), test_y, verbose=0)[1])


def main(argv):
    del argv
    if FLAGS.source_model:
        label_preservation(FLAGS.source_model, FLAGS.pairs_dir)
    diversity(FLAGS.pairs_dir)
    if not FLAGS.classifiers:
        return
    data = load_pairs(FLAGS.pairs_dir)
    test = load_domain(FLAGS.target, "test", FLAGS.image_size, role="target")
    test_x, test_y = zip(*[(x.numpy(), y.numpy()) for x, y in test.dataset()])
    test_x, test_y = np.stack(test_x), np.array(test_y)
    results = {}
    unknown = set(FLAGS.train_on) - {"S", "T_f"}
    if unknown:
        raise SystemExit(f"--train_on: expected some of S,T_f, got {','.join(sorted(unknown))}")
    for name, key in (("S", "image"), ("T_f", "translated")):
        if name not in FLAGS.train_on:
            continue
        accs = [accuracy(data[key], data["label"], test_x, test_y, int(s)) for s in FLAGS.seeds]
        results[name] = accs
        print(json.dumps({"measure": "target_test_accuracy", "train_on": name, "train_images": len(data[key]),
                          "test_images": len(test_y), "per_seed": accs, "mean": float(np.mean(accs))}),
              flush=True)
    if len(results) == 2:
        print(json.dumps({"measure": "T_f_minus_S", "value": float(np.mean(results["T_f"]) - np.mean(results["S"])),
                          "paper": {"S": 0.456, "T_f": 0.750}}), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf.get_logger().setLevel("ERROR")
    app.run(main)
