"""Benchmark of the exported formats: batch-1 latency and size of Keras, SavedModel and each TFLite variant.

  python -m bench.export [--digit_model=PATH.keras] [--resnet_size=224] [--threads=2] [--repeats=...]

Prints one JSON object per line: first each format's absolute figures ("measure": "format"), then ratios of
two formats timed in the same run ("measure": "ratio"), then the int8 goal check ("measure": "int8_goal":
int8 >= 3x faster than float TFLite, <= 1 point target-accuracy loss, <= 0.3x the float file size).

Digit CNN: --digit_model (default: runs/demo adapt or source model; without one a digit CNN is trained for a
few epochs on the demo source), parity and accuracy on the demo target test set, int8 calibrated on the demo
target train set. ResNet-50: no pretrained weights (the machine is offline), so its latency and sizes are
real but its accuracy is not (calibration and parity on random images); input --resnet_size.
"""

import json
import os
import platform
import statistics
import tempfile
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("digit_model", None, "Trained digit CNN (.keras); default: runs/demo/{adapt,source}/model.keras, "
                    "else train one for --train_epochs on the demo source.")
flags.DEFINE_string("target", "demo", "Target domain for digit parity/accuracy and int8 calibration.")
flags.DEFINE_integer("train_epochs", 5, "Epochs of the fallback digit CNN.")
flags.DEFINE_integer("resnet_size", 224, "ResNet-50 input size (0 = skip ResNet-50).")
flags.DEFINE_integer("resnet_classes", 31, "ResNet-50 classes (Office-31).")
flags.DEFINE_integer("threads", 2, "Threads for TensorFlow (intra-op) and the LiteRT interpreter.")
flags.DEFINE_integer("digit_repeats", 300, "Timed batch-1 calls per format (digit CNN).")
flags.DEFINE_integer("resnet_repeats", 20, "Timed batch-1 calls per format (ResNet-50).")
flags.DEFINE_integer("num_calibration", 200, "int8 representative images.")


def emit(obj):
    print(json.dumps(obj, sort_keys=False), flush=True)


def timed(fn, repeats, warmup=5):
    """Median and min wall time of ``fn()`` in ms over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": round(statistics.median(times), 4), "min_ms": round(min(times), 4)}


def keras_fn(model, image):
    import tensorflow as tf

    from daaa_tf.models import model_spec, preprocess

    arch = model_spec(model)["arch"]
    fn = tf.function(lambda x: tf.nn.softmax(model(preprocess(x, arch), training=False)["logits"]))
    x = tf.constant(image)
    fn(x)
    return lambda: fn(x).numpy()


def saved_model_fn(path, image):
    import tensorflow as tf

    from daaa_tf.serving.runners import resolve_saved_model

    serve = tf.saved_model.load(resolve_saved_model(path) or path).signatures["serving_default"]
    x = tf.constant(image)
    return lambda: serve(images=x)["probabilities"].numpy()


def tflite_fn(path, image):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=FLAGS.threads)
    runner = interpreter.get_signature_runner("serving_default")
    runner(images=image)  # resizes to batch 1 and allocates once
    inp = runner.get_input_details()["images"]["index"]
    out = runner.get_output_details()["probabilities"]["index"]

    def call():
        interpreter.set_tensor(inp, image)
        interpreter.invoke()
        return interpreter.get_tensor(out)
    return call


def digit_model_path(work):
    if FLAGS.digit_model:
        return FLAGS.digit_model, "given"
    for stage in ("adapt", "source"):
        path = os.path.join("runs", "demo", stage, "model.keras")
        if os.path.exists(path):
            return path, stage
    from daaa_tf.stages.source import SourceConfig, train_source

    train_source(SourceConfig(out_dir=os.path.join(work, "source"), epochs=FLAGS.train_epochs))
    return os.path.join(work, "source", "model.keras"), f"source-only, trained here for {FLAGS.train_epochs} epochs"


def bench_model(name, model_path, images, labels, calibration, repeats, work, note, trained=True):
    from daaa_tf.models import load_classifier
    from daaa_tf.serving import writer as exporting

    model = load_classifier(model_path)
    export_dir = os.path.join(work, f"export_{name}")
    start = time.perf_counter()
    parity, _ = exporting.export_formats(model, export_dir, exporting.FORMATS, images, labels,
                                         calibration_images=calibration, enforce_bounds=False)
    export_seconds = time.perf_counter() - start
    image = images[:1]
    fns = {"keras": keras_fn(model, image),
           "saved_model": saved_model_fn(os.path.join(export_dir, "saved_model"), image)}
    for mode in exporting.TFLITE_MODES:
        fns[f"tflite_{mode}"] = tflite_fn(os.path.join(export_dir, exporting.tflite_name(mode)), image)
    sizes = {"keras": os.path.getsize(model_path),
             "saved_model": exporting.directory_size(os.path.join(export_dir, "saved_model"))}
    sizes.update({f"tflite_{m}": os.path.getsize(os.path.join(export_dir, exporting.tflite_name(m)))
                  for m in exporting.TFLITE_MODES})
    rows = {}
    for fmt, fn in fns.items():
        row = parity["formats"].get(fmt.replace("tflite_", ""), {}) if fmt != "keras" else {}
        rows[fmt] = {"bench": "export", "model": name, "measure": "format", "format": fmt,
                     "input": list(images.shape[1:]), "batch": 1, **timed(fn, repeats),
                     "size_bytes": sizes[fmt], "accuracy": row.get("accuracy", parity["reference"]["accuracy"]),
                     "top1_agreement": row.get("top1_agreement", 1.0),
                     "max_abs_delta": row.get("max_abs_delta", 0.0), "note": note}
        emit(rows[fmt])
    for a, b in [("keras", "saved_model"), ("keras", "tflite_float"), ("tflite_float", "tflite_dynamic"),
                 ("tflite_float", "tflite_int8"), ("keras", "tflite_int8")]:
        emit({"bench": "export", "model": name, "measure": "ratio", "a": a, "b": b,
              "speedup_b_over_a": round(rows[a]["median_ms"] / rows[b]["median_ms"], 3),
              "speedup_b_over_a_min": round(rows[a]["min_ms"] / rows[b]["min_ms"], 3),
              "size_b_over_a": round(sizes[b] / sizes[a], 4),
              "a_ms": rows[a]["median_ms"], "b_ms": rows[b]["median_ms"], "a_bytes": sizes[a], "b_bytes": sizes[b]})
    f, q = rows["tflite_float"], rows["tflite_int8"]
    speedup, size_ratio = f["median_ms"] / q["median_ms"], q["size_bytes"] / f["size_bytes"]
    drop = parity["formats"]["int8"]["accuracy_drop"] if trained else None
    emit({"bench": "export", "model": name, "measure": "int8_goal", "speedup_vs_float": round(speedup, 3),
          "speedup_vs_float_min": round(f["min_ms"] / q["min_ms"], 3), "size_vs_float": round(size_ratio, 4),
          "accuracy_drop_points": None if drop is None else round(drop, 3),
          "goal": {"speedup>=3": speedup >= 3, "size<=0.3": size_ratio <= 0.3,
                   "drop<=1": None if drop is None else drop <= 1.0},
          "export_seconds": round(export_seconds, 1), "note": note})


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    from daaa_tf.data import load_domain
    from daaa_tf.data.pipelines import take_examples
    from daaa_tf.models import build_classifier

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    emit({"bench": "export", "measure": "environment", "tensorflow": tf.__version__, "threads": FLAGS.threads,
          "cpu_count": os.cpu_count(), "machine": platform.machine(),
          "loadavg_1m": round(os.getloadavg()[0], 2)})
    with tempfile.TemporaryDirectory(prefix="bench_export_") as work:
        path, origin = digit_model_path(work)
        test = load_domain(FLAGS.target, "test", 32, role="target")
        train = load_domain(FLAGS.target, "train", 32, role="target")
        images, labels = take_examples(test.dataset())
        calibration, _ = take_examples(train.dataset(), FLAGS.num_calibration, shuffle_seed=0)
        bench_model("digit_cnn", path, images, labels, calibration, FLAGS.digit_repeats, work,
                    f"{path} ({origin}); target {FLAGS.target} test: {len(images)} images")
        if FLAGS.resnet_size:
            size = FLAGS.resnet_size
            rpath = os.path.join(work, "resnet50.keras")
            build_classifier("resnet50", FLAGS.resnet_classes, size, weights=None).save(rpath)
            rng = np.random.default_rng(0)
            rimages = rng.integers(0, 256, (32, size, size, 3), dtype=np.uint8)
            rlabels = rng.integers(0, FLAGS.resnet_classes, len(rimages))
            rcal = rng.integers(0, 256, (min(FLAGS.num_calibration, 32), size, size, 3), dtype=np.uint8)
            bench_model("resnet50", rpath, rimages, rlabels, rcal, FLAGS.resnet_repeats, work,
                        f"untrained (weights none), {size}x{size}: latency and size are real, accuracy is not",
                        trained=False)
    emit({"bench": "export", "measure": "environment_end", "loadavg_1m": round(os.getloadavg()[0], 2)})


if __name__ == "__main__":
    app.run(main)
