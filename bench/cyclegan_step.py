"""Benchmark of one CycleGAN training step (never run as a test). Prints one JSON object per line.

    python bench/cyclegan_step.py [--gen_width=32 --gen_blocks=3 --batch_size=32 --precisions=float32,mixed_bfloat16]

Measures, per precision, in the same process: images/s of the full ``CycleGAN.train_step`` and the ratio of
that step to the sum of its parts timed alone (both generators forward+backward+update, the cycle passes
forward+backward, the identity passes if enabled, both discriminators forward+backward+update on
[real; pooled fake; fake] including the gradient to their fake inputs). Goal: ratio <= 1.15. Then the
bf16/f32 speed ratio, with --noise_shape the cost of a noise-taking G^ST and its encoder (the step and the
translation of the noise model against the paper's, interleaved in the same rounds), the translation throughput
(generator + PNG + TFRecord) and an estimate of the wall time of a CycleGAN run of --estimate_steps steps plus
translating --estimate_images images.
"""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from daaa_tf.data import pair_writer  # noqa: E402
from daaa_tf.method import cyclegan as cg  # noqa: E402
from daaa_tf.method import losses  # noqa: E402

flags.DEFINE_integer("image_size", 32, "Image side.")
flags.DEFINE_integer("batch_size", 32, "Batch per domain.")
flags.DEFINE_integer("gen_width", 32, "Generator k.")
flags.DEFINE_integer("gen_blocks", 3, "Generator residual blocks.")
flags.DEFINE_integer("disc_width", 64, "Discriminator width.")
flags.DEFINE_integer("disc_layers", 3, "Discriminator stride-2 layers.")
flags.DEFINE_float("identity_weight", 0.0, "Identity loss weight (adds two generator passes).")
flags.DEFINE_integer("pool_size", 50, "Fake pool size.")
flags.DEFINE_list("noise_shape", [], "Also time the CycleGAN with this --noise_shape (h,w,c) against the paper's.")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "Dtype policies to compare.")
flags.DEFINE_integer("iters", 8, "Timed rounds (after 2 warm-up ones); the median of each measure is kept.")
flags.DEFINE_integer("translate_images", 2048, "Images translated for the throughput measure (0 = skip).")
flags.DEFINE_integer("estimate_steps", 3000, "Steps of the run to estimate.")
flags.DEFINE_integer("estimate_images", 60000 + 59001, "Images to translate in the run to estimate.")
FLAGS = flags.FLAGS


def timed_rounds(fns, iters):
    """Median seconds of each fn; the fns are interleaved round by round so load changes hit all alike."""
    for fn in fns.values():
        fn()
        fn()
    times = {k: [] for k in fns}
    for _ in range(iters):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def parts_of(model, x_s, x_t):
    """tf.functions that each do one part of the step alone, with the same shapes and optimizers."""
    g_vars = model.g_st.trainable_variables + model.g_ts.trainable_variables
    fake_t, fake_s = model.g_st(x_s), model.g_ts(x_t)
    n = x_s.shape[0]

    @tf.function
    def generators():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.g_st(x_s, training=True)) + tf.reduce_mean(model.g_ts(x_t, training=True))
        grads = tape.gradient(loss, g_vars)
        k = len(model.g_st.trainable_variables)
        model.optimizers["g_st"].apply(grads[:k], model.g_st.trainable_variables)
        model.optimizers["g_ts"].apply(grads[k:], model.g_ts.trainable_variables)

    def passes(a, b):
        @tf.function
        def run():
            with tf.GradientTape() as tape:
                loss = (losses.cycle_loss(a, model.g_ts(a, training=True))
                        + losses.cycle_loss(b, model.g_st(b, training=True)))
            return tape.gradient(loss, g_vars)
        return run

    @tf.function
    def discriminators():
        out = {}
        for name, disc, real, fake in (("d_t", model.d_t, x_t, fake_t), ("d_s", model.d_s, x_s, fake_s)):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(fake)
                shown = [fake] if model.pool_t is not None else []
                logits = disc(tf.concat([real, *shown, fake], 0), training=True)
                d_loss = losses.discriminator_loss(logits[:n], logits[n:2 * n])
                adv = losses.generator_adversarial_loss(logits[-n:])
            grads = tape.gradient(d_loss, disc.trainable_variables)
            out[name] = tape.gradient(adv, fake)
            model.optimizers[name].apply(grads, disc.trainable_variables)
        return out

    out = {"generators": generators, "cycle": passes(fake_t, fake_s), "discriminators": discriminators}
    if model.identity_weight:
        out["identity"] = passes(x_t, x_s)
    return out


def bench_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    cfg = cg.CycleGANConfig(image_size=FLAGS.image_size, gen_width=FLAGS.gen_width, gen_blocks=FLAGS.gen_blocks,
                            disc_width=FLAGS.disc_width, disc_layers=FLAGS.disc_layers,
                            identity_weight=FLAGS.identity_weight, pool_size=FLAGS.pool_size,
                            batch_size=FLAGS.batch_size)
    model = cg.build_cyclegan(cfg)
    rng = np.random.default_rng(0)
    shape = (FLAGS.batch_size, FLAGS.image_size, FLAGS.image_size, 3)
    x_s = tf.constant(rng.uniform(-1, 1, shape).astype("float32"))
    x_t = tf.constant(rng.uniform(-1, 1, shape).astype("float32"))
    step = tf.function(model.train_step)
    parts = parts_of(model, x_s, x_t)
    extra = {}
    if FLAGS.noise_shape:
        noise_shape = tuple(map(int, FLAGS.noise_shape))
        noisy = cg.build_cyclegan(cg.CycleGANConfig(**{**cfg.__dict__, "noise_shape": noise_shape}))
        noisy_step, noisy_translate = tf.function(noisy.train_step), tf.function(lambda x: noisy.translate(x, "st"))
        plain_translate = tf.function(lambda x: model.translate(x, "st"))
        images = tf.constant(rng.integers(0, 256, (256, *shape[1:])).astype("uint8"))
        extra = {"noise_step": lambda: noisy_step((x_s, x_t)), "noise_translate": lambda: noisy_translate(images),
                 "plain_translate": lambda: plain_translate(images)}
    times = timed_rounds({"step": lambda: step((x_s, x_t)), **extra, **parts}, FLAGS.iters)
    full = times.pop("step")
    noise = {}
    if extra:
        noise = {"noise_shape": list(map(int, FLAGS.noise_shape)), "noise_step_ms": 1000 * times["noise_step"],
                 "ratio_noise_step_to_step": times.pop("noise_step") / full,
                 "ratio_noise_translate_to_translate": times.pop("noise_translate") / times.pop("plain_translate")}
    parts = times
    result = {"measure": "cyclegan_step", "precision": policy, "batch_size": FLAGS.batch_size,
              "gen_width": FLAGS.gen_width, "gen_blocks": FLAGS.gen_blocks, "disc_width": FLAGS.disc_width,
              "disc_layers": FLAGS.disc_layers, "identity_weight": FLAGS.identity_weight,
              "params": {k: int(getattr(model, k).count_params()) for k in cg.NETWORKS},
              "images_per_s": FLAGS.batch_size / full, "step_ms": 1000 * full,
              "parts_ms": {k: 1000 * v for k, v in parts.items()},
              "ratio_step_to_parts": full / sum(parts.values()), "goal": 1.15, **noise}
    print(json.dumps(result), flush=True)
    return model, result


def bench_translate(model):
    n = FLAGS.translate_images
    images = np.random.default_rng(1).integers(0, 256, (n, FLAGS.image_size, FLAGS.image_size, 3), np.uint8)
    fn = tf.function(lambda x: model.translate(x, "st"), reduce_retracing=True)
    fn(images[:256])
    t0 = time.perf_counter()
    for i in range(0, n, 256):
        fn(images[i:i + 256]).numpy()
    gen_s = time.perf_counter() - t0
    ds = tf.data.Dataset.from_tensor_slices((images, np.zeros(n, np.int32)))
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        pair_writer.write_translated_shards(d, "source", ds, n, fn, batch_size=256, shard_size=n, progress=False)
        total_s = time.perf_counter() - t0
    return {"measure": "translate", "images": n, "generator_images_per_s": n / gen_s,
            "shards_images_per_s": n / total_s, "ratio_shards_to_generator": total_s / gen_s}


def main(argv):
    del argv
    results = {p: bench_precision(p) for p in FLAGS.precisions}
    if {"float32", "mixed_bfloat16"} <= set(results):
        f32, bf16 = results["float32"][1], results["mixed_bfloat16"][1]
        print(json.dumps({"measure": "bf16_vs_f32", "speedup": bf16["images_per_s"] / f32["images_per_s"],
                          "float32_images_per_s": f32["images_per_s"],
                          "mixed_bfloat16_images_per_s": bf16["images_per_s"]}), flush=True)
    policy = "mixed_bfloat16" if "mixed_bfloat16" in results else FLAGS.precisions[-1]
    model, step = results[policy]
    if FLAGS.translate_images:
        tr = bench_translate(model)
        print(json.dumps({**tr, "precision": policy}), flush=True)
        train_min = FLAGS.estimate_steps * FLAGS.batch_size / step["images_per_s"] / 60
        translate_min = FLAGS.estimate_images / tr["shards_images_per_s"] / 60
        print(json.dumps({"measure": "estimate", "precision": policy, "steps": FLAGS.estimate_steps,
                          "batch_size": FLAGS.batch_size, "train_minutes": train_min,
                          "translate_images": FLAGS.estimate_images, "translate_minutes": translate_min,
                          "total_minutes": train_min + translate_min,
                          "note": "step time from the steady state; add ~1 min for start-up, tracing, "
                                  "checkpoints and sample grids"}), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
