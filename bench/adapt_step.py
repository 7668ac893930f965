"""Benchmark of the DAAA train step (Eq. 13) against a plain supervised step (never run as a test).

    python bench/adapt_step.py [--archs=digit_cnn,resnet50 --rounds=9 --precisions=float32,mixed_bfloat16]

Prints one JSON object per line. For each architecture (digit CNN 32x32 batch 64; ResNet-50 without weights at a
CPU-sized --resnet_size, batch --resnet_batch, all 52 non-stem conv taps) and each precision, in the same process
and interleaved round by round (the machine is shared, so only ratios of things timed together mean much):

- ``daaa``: ``DAAA.train_step`` (in a ``tf.function``) built by ``daaa_tf.method.daaa.build_daaa`` on a fake batch
  of uint8 images mixed 0.35/0.15/0.35/0.15 from the four streams (M_post on, p_t = 0, so L_EM is live);
- ``plain``: ``keras.Model(inputs, logits)`` of the same network, compiled with SparseCategoricalCrossentropy
  and the same optimizer, its ``train_step`` (in a ``tf.function``) on the same global batch (preprocessed);
- ``daaa_cached``: the same DAAA step with the frozen source network's maps read from the cache
  (``daaa_tf.method.source_maps``; tables of the shipped config's size, the batch carrying record indices), as the
  adaptation stage runs it; ``cache_build``: one batch of the cache's one-off forward pass (128 images), amortised in
  ``cached.amortised_ratio_median`` over the pair images per step of the shipped config;
- ``floor``: the plain step plus the two forward passes DAAA cannot avoid (source net on [x_s; x~s] = 0.5 B,
  M_post on x_t = 0.35 B): the cost model measured on this machine, without attention maps or losses.

Measures: ``daaa_vs_plain`` per precision (median- and min-based ratios of step time, the median of the
per-round ratios, the measured floor and DAAA over it), goal <= 1.35 (the cost model - target fwd+bwd on B,
source fwd on 0.5 B, M_post fwd on 0.35 B, forward ~ 1/3 of fwd+bwd - puts the floor near 1.28; on a CPU the
forward is a larger share, so the measured floor is higher); ``bf16_vs_f32`` (the DAAA step's speed-up under
mixed_bfloat16). ``--parts`` adds the time of the step's pieces run alone (where the excess goes).
``--clock=cpu`` times with this process's CPU time instead of wall time: on a machine shared with other jobs
the wall-time median of a step can double while its CPU time stays within a few per cent (measured: plain
step 45.6-46.8 ms CPU against 25-94 ms wall in the same run), so CPU-time ratios are the ones to quote there.
Each architecture runs in its own subprocess; the dtype policies of all models of one architecture are fixed
at build time (checked), so float32 and mixed_bfloat16 models are interleaved in one process.
"""

import json
import os
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

flags.DEFINE_list("archs", ["digit_cnn", "resnet50"], "Architectures to bench (each in its own subprocess).")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "Dtype policies (float32 first is the baseline).")
flags.DEFINE_integer("digit_size", 32, "Digit CNN image side.")
flags.DEFINE_integer("digit_batch", 64, "Digit CNN global batch.")
flags.DEFINE_integer("resnet_size", 64, "ResNet-50 image side (CPU-sized; the paper uses 224).")
flags.DEFINE_integer("resnet_batch", 16, "ResNet-50 global batch.")
flags.DEFINE_string("resnet_taps", "all_conv", "ResNet-50 --attention_layers (all_conv = 52 taps).")
flags.DEFINE_float("beta", 1.0, "beta of the DAAA step (0: 'wo L_AT', the step skips L_AT's backward pass).",
                   lower_bound=0.0)
flags.DEFINE_integer("rounds", 9, "Timed rounds (after a warm-up); every model runs once per round.")
flags.DEFINE_integer("steps", 0, "Steps per model per round (0: 8 for the digit CNN, 2 for ResNet-50).")
flags.DEFINE_bool("parts", False, "Also time the pieces of the DAAA step alone (first precision only).")
flags.DEFINE_enum("clock", "wall", ["wall", "cpu"],
                  "wall: time.perf_counter; cpu: this process's CPU time (time.process_time, all its threads), which "
                  "other jobs on a shared machine disturb far less than wall time.")
flags.DEFINE_integer("cache_rows", 0, "Rows of each cached source-map table (0: the shipped config's x_s count, "
                     "60,000 for the digit CNN (MNIST), 2,817 for ResNet-50 (Office-31 Amazon)).")
flags.DEFINE_float("cache_images_per_step", 0,
                   "Pair images whose maps the cache computes per adaptation step (0: the shipped config's: MNIST -> "
                   "MNIST-M 119,001 / 20,000 steps; Office-31 A -> W 3,612 / 5,000 steps).")
flags.DEFINE_string("worker", "", "Internal: run one architecture in this process.")
FLAGS = flags.FLAGS

GOAL, FLOOR = 1.35, 1.0 + (0.5 + 0.35) / 3.0


# the shipped configs' cache: (rows of the x_s table, pair images whose maps are computed per adaptation step)
CACHE_SIZES = {"digit_cnn": (60000, 119001 / 20000), "resnet50": (2817, (2817 + 795) / 5000)}


def cache_size(arch):
    rows, per_step = CACHE_SIZES[arch]
    return FLAGS.cache_rows or rows, FLAGS.cache_images_per_step or per_step


def arch_setup(arch):
    """(image_size, batch, num_classes, optimizer, head_lr_mult, attention_layers) of one architecture."""
    if arch == "digit_cnn":
        return FLAGS.digit_size, FLAGS.digit_batch, 10, "adam", 1.0, "all_conv"
    if arch == "resnet50":
        return FLAGS.resnet_size, FLAGS.resnet_batch, 31, "sgd", 10.0, FLAGS.resnet_taps
    raise ValueError(f"--archs: unknown architecture {arch!r}")


def make_cfg(arch):
    size, batch, _, opt, head_mult, taps = arch_setup(arch)
    return types.SimpleNamespace(
        arch=arch, image_size=size, attention_layers=taps, batch_size=batch,
        proportions=(0.35, 0.15, 0.35, 0.15), streams=("s", "tf", "t", "sf"), beta=FLAGS.beta,
        attention_criterion="l2", threshold=0.0, sync_every=100, restart_lr=True, optimizer=opt, lr=1e-3,
        lr_alpha=10.0, lr_power=0.75, head_lr_mult=head_mult, epochs=1, steps_per_epoch=1000)


def build_pair(arch, policy, rng):
    """({"daaa", "plain", "floor": step}, info, (model, data)) for one precision; each step runs and waits."""
    import keras
    import tensorflow as tf

    from daaa_tf import runtime
    from daaa_tf.method.daaa import build_daaa
    from daaa_tf.method.schedules import make_optimizer
    from daaa_tf.method.source_maps import BATCH as CACHE_BATCH
    from daaa_tf.method.source_maps import concatenated_maps, tap_widths
    from daaa_tf.models import build_classifier, preprocess

    cfg = make_cfg(arch)
    _, batch, k, _, _, _ = arch_setup(arch)
    runtime.set_precision(policy)
    source = build_classifier(arch, k, cfg.image_size, None, cfg.attention_layers)
    strategy = tf.distribute.get_strategy()
    model, counts = build_daaa(cfg, source, strategy)
    model.em_active.assign(1.0)
    img = lambda n: tf.constant(rng.integers(0, 256, (n, cfg.image_size, cfg.image_size, 3), dtype=np.uint8))
    lab = lambda n: tf.constant(rng.integers(0, k, n).astype(np.int32))
    data = {"xs": img(counts["s"]), "ys": lab(counts["s"]), "xtf": img(counts["tf"]), "ytf": lab(counts["tf"]),
            "xt": img(counts["t"]), "xsf": img(counts["sf"])}

    net = build_classifier(arch, k, cfg.image_size, None, cfg.attention_layers)
    plain = keras.Model(net.input, net.output["logits"])
    plain.compile(optimizer=make_optimizer(cfg.optimizer, cfg.lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    x = preprocess(tf.constant(rng.integers(0, 256, (batch, cfg.image_size, cfg.image_size, 3), np.uint8)), arch)
    y = lab(batch)
    runtime.set_precision("float32")
    conv = next(lyr for lyr in model.target.layers if isinstance(lyr, keras.layers.Conv2D))
    info = {"policy_target": conv.dtype_policy.name,
            "policy_plain": next(lyr for lyr in plain.layers
                                 if isinstance(lyr, keras.layers.Conv2D)).dtype_policy.name,
            "counts": counts, "taps": len(model.target.output["taps"])}
    if info["policy_target"] != policy or info["policy_plain"] != policy:
        raise RuntimeError(f"dtype policy leaked: asked {policy}, got {info}")
    x_src = preprocess(tf.concat([data["xs"], data["xsf"]], 0), arch)
    x_t = preprocess(data["xt"], arch)

    @tf.function
    def floor_step():  # the plain step plus the two extra forwards DAAA needs: the measured cost-model floor
        logs = plain.train_step((x, y))
        extra = (tf.reduce_sum(model.source(x_src, training=False)["logits"])
                 + tf.reduce_sum(model.posterior(x_t, training=False)["logits"]))
        return logs["loss"], extra

    # the cached source maps (daaa_tf.method.source_maps): tables of the real run's size, random rows, random indices
    rows = cache_size(arch)[0]
    model.use_source_map_cache({k: rng.random((rows, sum(tap_widths(model.source))), np.float32)
                                for k in ("xs", "xsf")})
    indexed = {**data, "is": tf.constant(rng.integers(0, rows, counts["s"])),
               "isf": tf.constant(rng.integers(0, rows, counts["sf"]))}
    build_batch = preprocess(tf.constant(rng.integers(0, 256, (CACHE_BATCH, cfg.image_size, cfg.image_size, 3),
                                                      np.uint8)), arch)

    cache_build = tf.function(lambda: concatenated_maps(model.source, build_batch))  # source_map_cache's batch

    daaa_step, plain_step = tf.function(model.train_step), tf.function(plain.train_step)
    fetch = lambda out: tf.nest.map_structure(lambda t: t.numpy(), out)
    steps = {"daaa": lambda: fetch(daaa_step(data)), "plain": lambda: fetch(plain_step((x, y))),
             "floor": lambda: fetch(floor_step()), "daaa_cached": lambda: fetch(daaa_step(indexed)),
             "cache_build": lambda: cache_build().numpy()}
    return steps, info, (model, data)


def parts_of(model, data):
    """tf.functions timing the pieces of the DAAA step alone (same shapes, no optimizer update)."""
    import tensorflow as tf

    from daaa_tf.method.attention import attention_map
    from daaa_tf.models import preprocess

    arch = model.arch
    xs = {k: preprocess(v, arch) for k, v in data.items() if k.startswith("x")}
    x_all = tf.concat([xs[k] for k in ("xs", "xtf", "xt", "xsf")], 0)
    y_all = tf.concat([data["ys"], data["ytf"], tf.zeros_like(data["xt"][:, 0, 0, 0], tf.int32),
                       tf.zeros_like(data["xsf"][:, 0, 0, 0], tf.int32)], 0)
    x_src = tf.concat([xs["xs"], xs["xsf"]], 0)
    variables = model.target.trainable_variables

    def ce(logits):
        return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y_all, tf.cast(logits, tf.float32)))

    @tf.function
    def target_logits_grad():
        with tf.GradientTape() as tape:
            loss = ce(model.target(x_all, training=True)["logits"])
        return tape.gradient(loss, variables)

    @tf.function
    def target_taps_grad():
        with tf.GradientTape() as tape:
            out = model.target(x_all, training=True)
            loss = ce(out["logits"]) + tf.add_n([tf.reduce_sum(attention_map(f)) for f in out["taps"]])
        return tape.gradient(loss, variables)

    @tf.function
    def source_forward():
        return [attention_map(f) for f in model.source(x_src, training=False)["taps"]]

    @tf.function
    def posterior_forward():
        return model.posterior(xs["xt"], training=False)["logits"]

    @tf.function
    def full_grad():
        with tf.GradientTape() as tape:
            sums, _ = model.compute_losses(data, training=True)
            loss = (sums["ce"] + sums["em"] + model.beta * sums["at"]) / model.global_batch
        return tape.gradient(loss, variables)

    def sync(fn):  # one scalar that depends on every output (fetching 25 M gradients would cost more)
        reduced = tf.function(lambda: tf.add_n([tf.reduce_sum(tf.cast(t, tf.float32)) for t in tf.nest.flatten(fn())]))
        return lambda: reduced().numpy()

    return {"target_logits_grad": sync(target_logits_grad), "target_taps_grad": sync(target_taps_grad),
            "source_forward": sync(source_forward), "posterior_forward": sync(posterior_forward),
            "full_grad_no_update": sync(full_grad)}


def timed_rounds(fns, rounds, steps):
    """Per-step seconds of each fn in each round; fns interleaved round by round (warm-up: 2 calls each)."""
    clock = time.process_time if FLAGS.clock == "cpu" else time.perf_counter
    for fn in fns.values():
        fn()
        fn()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = clock()
            for _ in range(steps):
                fn()
            times[k].append((clock() - t0) / steps)
    return {k: np.asarray(v) for k, v in times.items()}


def ratio(times, num, den):
    a, b = times[num], times[den]
    return {"ratio_median": float(np.median(a) / np.median(b)), "ratio_min": float(a.min() / b.min()),
            "ratio_per_round_median": float(np.median(a / b))}


def cached_ratios(times, policy, plain, arch):
    """DAAA with the cached source maps over a plain step, alone and with the cache's build amortised over
    --cache_images_per_step images per step (the whole cost of the cached run per step)."""
    from daaa_tf.method.source_maps import BATCH as CACHE_BATCH

    cached = times[f"daaa_cached/{policy}"]
    per_image = times[f"cache_build/{policy}"] / CACHE_BATCH
    per_step = cache_size(arch)[1]
    amortised = cached + per_image * per_step
    return {**ratio(times, f"daaa_cached/{policy}", f"plain/{policy}"),
            "amortised_ratio_median": float(np.median(amortised) / np.median(plain)),
            "daaa_cached_step_ms_median": 1000 * float(np.median(cached)),
            "cache_build_ms_per_image_median": 1000 * float(np.median(per_image)),
            "cache_rows": cache_size(arch)[0], "cache_images_per_step": per_step}


def run_worker(arch):
    import tensorflow as tf

    from daaa_tf import runtime

    runtime.set_seed(0)
    rng = np.random.default_rng(0)
    size, batch, _, opt, head_mult, taps = arch_setup(arch)
    fns, infos, first = {}, {}, None
    for policy in FLAGS.precisions:
        steps, info, built = build_pair(arch, policy, rng)
        fns.update({f"{k}/{policy}": fn for k, fn in steps.items()})
        infos[policy] = info
        first = first or built
    if FLAGS.parts:
        fns.update({f"part/{k}": v for k, v in parts_of(*first).items()})
    steps = FLAGS.steps or (8 if arch == "digit_cnn" else 2)
    times = timed_rounds(fns, FLAGS.rounds, steps)
    base = {"arch": arch, "image_size": size, "batch_size": batch, "optimizer": opt, "head_lr_mult": head_mult,
            "attention_layers": taps, "beta": FLAGS.beta, "rounds": FLAGS.rounds, "steps_per_round": steps,
            "clock": FLAGS.clock,
            "threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()}
    for policy in FLAGS.precisions:
        d, p = times[f"daaa/{policy}"], times[f"plain/{policy}"]
        print(json.dumps({"measure": "daaa_vs_plain", **base, "precision": policy, "taps": infos[policy]["taps"],
                          "counts": infos[policy]["counts"],
                          "daaa_images_per_s": batch / float(np.median(d)),
                          "plain_images_per_s": batch / float(np.median(p)),
                          "daaa_step_ms_median": 1000 * float(np.median(d)), "daaa_step_ms_min": 1000 * float(d.min()),
                          "plain_step_ms_median": 1000 * float(np.median(p)),
                          "plain_step_ms_min": 1000 * float(p.min()),
                          **ratio(times, f"daaa/{policy}", f"plain/{policy}"), "goal": GOAL,
                          "cost_model_floor": round(FLOOR, 3),
                          "measured_floor_median": ratio(times, f"floor/{policy}", f"plain/{policy}")["ratio_median"],
                          "cached": cached_ratios(times, policy, p, arch),
                          "daaa_over_measured_floor_median":
                              ratio(times, f"daaa/{policy}", f"floor/{policy}")["ratio_median"]}), flush=True)
    if {"float32", "mixed_bfloat16"} <= set(FLAGS.precisions):
        r = ratio(times, "daaa/float32", "daaa/mixed_bfloat16")
        rp = ratio(times, "plain/float32", "plain/mixed_bfloat16")
        print(json.dumps({"measure": "bf16_vs_f32", **base,
                          "daaa_speedup_median": r["ratio_median"], "daaa_speedup_min": r["ratio_min"],
                          "daaa_speedup_per_round_median": r["ratio_per_round_median"],
                          "plain_speedup_median": rp["ratio_median"],
                          "daaa_float32_images_per_s": batch / float(np.median(times["daaa/float32"])),
                          "daaa_mixed_bfloat16_images_per_s":
                              batch / float(np.median(times["daaa/mixed_bfloat16"]))}), flush=True)
    parts = {k.split("/", 1)[1]: v for k, v in times.items() if k.startswith("part/")}
    if parts:
        plain = times[f"plain/{FLAGS.precisions[0]}"]
        print(json.dumps({"measure": "daaa_parts", **base, "precision": FLAGS.precisions[0],
                          "parts_ms_median": {k: 1000 * float(np.median(v)) for k, v in parts.items()},
                          "parts_over_plain_step_median": {k: float(np.median(v / plain)) for k, v in parts.items()},
                          "note": "each piece alone, no optimizer update; *_grad = forward+backward on the whole "
                                  "batch B, source_forward on 0.5 B with attention maps, posterior_forward on "
                                  "x_t"}), flush=True)


def main(argv):
    del argv
    if FLAGS.worker:
        run_worker(FLAGS.worker)
        return
    passed = [a for a in sys.argv[1:] if not a.startswith("--archs")]
    for arch in FLAGS.archs:
        arch_setup(arch)
        rc = subprocess.call([sys.executable, os.path.abspath(__file__), f"--worker={arch}", *passed])
        if rc:
            raise SystemExit(f"bench/adapt_step.py: the {arch} worker failed with exit status {rc}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
