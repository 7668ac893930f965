"""The CycleGAN stage (paper section 3.1): training with resume, sample grids, translation into pair shards.

``train_cyclegan`` runs ``fit`` with checkpoints every epoch (a rerun resumes from the last one with the same
step count), sample grids (PNG + TensorBoard) and ``metrics.json``; ``translate_domains`` writes the pair
shards (``daaa_tf.data.pairs``). The model itself is ``daaa_tf.method.cyclegan.CycleGAN``;
its input pipelines are in ``daaa_tf.data.pipelines``.
"""

import hashlib
import json
import os
import time

import keras
import tensorflow as tf

from daaa_tf import StageError, UserError, runtime, workers
from daaa_tf.data import pair_writer, pairs
from daaa_tf.data.pipelines import conform_domain, first_images, training_pairs
from daaa_tf.io import read_json, remove_stale_temporaries, write_json, write_text
from daaa_tf.method.cyclegan import build_cyclegan
from daaa_tf.models.gan_nets import to_float, to_uint8
from daaa_tf.stages import fingerprint as run_fingerprint
from daaa_tf.stages.callbacks import restore_newest_good

# ------------------------------------------------------------------------------------- samples / training


def sample_grid(model, x_s, x_t):
    """uint8 grid; one row per sample: x_s | G^ST(x_s) | G^TS(G^ST(x_s)) || x_t | G^TS(x_t) | G^ST(G^TS(x_t))
    (with a noise-taking G^ST: each x_s's own noise, and x_t's code E(x_t) to rebuild x_t)."""
    fs, ft = to_float(x_s), to_float(x_t)
    fake_t, fake_s = model.st(fs), model.g_ts(ft, training=False)
    code_t = None if model.enc is None else model.enc(ft, training=False)
    rec_s, rec_t = model.g_ts(fake_t, training=False), model.st(fake_s, code_t)
    cols = [fs, fake_t, rec_s, None, ft, fake_s, rec_t]
    gap = tf.ones_like(fs[..., :4, :]) * 1.0  # a white column between the two directions
    row = tf.concat([gap if c is None else tf.cast(c, tf.float32) for c in cols], axis=2)  # [N, H, W', 3]
    return to_uint8(tf.reshape(row, [-1, row.shape[2], 3])).numpy()


class EpochEnd(keras.callbacks.Callback):
    """Each epoch: checkpoint (the resume point), sample grid PNG + TensorBoard image, metrics.json.

    Under a multi-worker ``strategy`` every worker saves the checkpoint (the other workers into a private
    temporary directory, removed at once); only the chief writes the samples and metrics.json."""

    def __init__(self, manager, out_dir, x_s, x_t, batch_size, history, strategy=None):
        super().__init__()
        self.manager, self.out_dir, self.x_s, self.x_t = manager, out_dir, x_s, x_t
        self.batch_size, self.history = batch_size, history
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = workers.is_chief(self.strategy)
        self.writer = (tf.summary.create_file_writer(os.path.join(out_dir, "tensorboard", "samples"))
                       if self.chief else None)

    def on_epoch_begin(self, epoch, logs=None):
        self.t0, self.step0 = time.perf_counter(), self.model.step_count()

    def on_epoch_end(self, epoch, logs=None):
        step = self.model.step_count()
        seconds = time.perf_counter() - self.t0
        if not self.chief:
            scratch = workers.private_dir(self.out_dir, self.strategy)
            tf.train.CheckpointManager(self.manager.checkpoint, scratch, max_to_keep=1).save(checkpoint_number=step)
            workers.release(scratch, self.strategy)
            return
        self.manager.save(checkpoint_number=step)
        grid = sample_grid(self.model, self.x_s, self.x_t)
        png = tf.io.encode_png(grid).numpy()
        for path in (os.path.join(self.out_dir, "samples", f"step_{step:07d}.png"),
                     os.path.join(self.out_dir, "samples.png")):
            write_text(path, png, "wb")
        with self.writer.as_default():
            tf.summary.image("samples (real | translated | reconstructed)", grid[None], step=step)
        self.writer.flush()
        lr = getattr(self.model, "lr_schedule", None)
        lr = lr(step - 1) if callable(lr) else lr  # the LR of the epoch's last step
        record = {"epoch": epoch + 1, "step": step, "seconds": seconds, "lr": None if lr is None else float(lr),
                  "images_per_s": (step - self.step0) * self.batch_size / max(seconds, 1e-9),
                  **{k: float(v) for k, v in (logs or {}).items()}}
        self.history.append(record)
        write_json(os.path.join(self.out_dir, "metrics.json"), {"step": step, "history": self.history})


def _check_batch(c, strategy):
    r = strategy.num_replicas_in_sync
    if c.batch_size % r:
        near = sorted({max(r, c.batch_size - c.batch_size % r), c.batch_size - c.batch_size % r + r})
        raise UserError(f"--cyclegan_batch_size={c.batch_size} must be a multiple of the {r} replicas: use "
                        f"--cyclegan_batch_size={' or '.join(map(str, near))}")


def train_cyclegan(config, source, target, out_dir, strategy=None, verbose=None, sample_count=8,
                   semantic_net=None, semantic_arch="digit_cnn"):
    """Trains (or resumes) a CycleGAN; ``source``/``target`` have ``.dataset()`` and ``.num_examples``.

    Writes ``out_dir``/checkpoints (every ``steps_per_epoch``), samples.png, tensorboard/, metrics.json and,
    when done, g_st.keras / g_ts.keras. Returns (model, metrics dict).
    """
    c = config
    strategy = strategy or tf.distribute.get_strategy()
    _check_batch(c, strategy)
    model = build_cyclegan(c, strategy, semantic_net, semantic_arch)
    manager = tf.train.CheckpointManager(model.checkpoint(), os.path.join(out_dir, "checkpoints"),
                                         max_to_keep=2)
    restore_newest_good(manager.checkpoint, manager, hint="if the networks' flags changed (--gen_width, "
                        "--gen_blocks, --disc_width, --disc_layers, --cyclegan_upsample, --noise_shape), pass those "
                        "of the run that wrote them")
    step = model.step_count()
    old = read_json(os.path.join(out_dir, "metrics.json"), {}) or {}
    history = [h for h in old.get("history", []) if h["step"] <= step]
    src_ds, tgt_ds = source.dataset(), target.dataset()
    x_s, x_t = first_images(src_ds, sample_count), first_images(tgt_ds, sample_count)
    callback = EpochEnd(manager, out_dir, x_s, x_t, c.batch_size, history, strategy)
    t0, step0 = time.perf_counter(), step
    tb_dir = workers.private_dir(os.path.join(out_dir, "tensorboard"), strategy)  # the chief's, or scratch
    if step < c.steps:
        tensorboard = keras.callbacks.TensorBoard(tb_dir, write_graph=False,
                                                  profile_batch=tuple(getattr(c, "profile_steps", ())) or 0)
        spe = c.steps_per_epoch
        full_epochs = c.steps // spe
        while model.step_count() < c.steps:
            step = model.step_count()
            epoch = step // spe
            if step % spe or epoch >= full_epochs:  # off the epoch grid, or the last partial epoch
                steps_per_epoch, epochs = min(spe - step % spe, c.steps - step), epoch + 1
            else:
                steps_per_epoch, epochs = spe, full_epochs
            data = workers.fit_input(training_pairs((src_ds, source.num_examples),
                                                        (tgt_ds, target.num_examples), c.batch_size, c.seed,
                                                        skip_steps=step))
            model.fit(data, steps_per_epoch=steps_per_epoch, epochs=epochs, initial_epoch=epoch,
                      callbacks=[callback, tensorboard], shuffle=False,
                      verbose=runtime.fit_verbosity() if verbose is None else verbose)
    seconds = time.perf_counter() - t0
    workers.release(tb_dir, strategy)
    for k in [n for n in model.networks if n[0] != "d"]:  # g_st.keras, g_ts.keras (and enc.keras)
        with workers.artifact_path(os.path.join(out_dir, f"{k}.keras"), strategy) as tmp:
            getattr(model, k).save(tmp)
    done = model.step_count() - step0
    metrics = {"step": model.step_count(), "history": callback.history, "complete": True,
               "train_seconds_this_run": seconds,
               "images_per_s_this_run": done * c.batch_size / seconds if done else None,
               "parameters": {k: int(getattr(model, k).count_params()) for k in model.networks},
               "code": runtime.code_version()}
    if workers.is_chief(strategy):
        write_json(os.path.join(out_dir, "metrics.json"), metrics)
    return model, metrics


def translate_domains(model, source, target, pairs_dir, batch_size=256, shard_size=10000, progress=True,
                      fingerprint=None, strategy=None):
    """Translates every source image by G^ST and every target image by G^TS into pair shards (resumable).

    Under a multi-worker ``strategy`` worker k of n translates shards k, k + n, ... of each kind; once all are
    done the chief adds them to the manifest and marks it complete (docs/design.md, "Multi-worker")."""
    strategy = strategy or tf.distribute.get_strategy()
    worker = (workers.worker_index(strategy), workers.num_workers(strategy))
    if worker[1] > 1:  # shards cut short by a kill go before any worker writes (one worker: the writer does it)
        if workers.is_chief(strategy):
            remove_stale_temporaries(pairs_dir, recursive=False)
        workers.barrier(strategy)
    fingerprint = {"step": model.step_count(), **(fingerprint or {})}
    fns = {"st": tf.function(lambda x: model.translate(x, "st"), reduce_retracing=True),
           "ts": tf.function(lambda x: model.translate(x, "ts"), reduce_retracing=True)}
    t0 = time.perf_counter()
    manifest = None
    for kind, domain, direction in (("source", source, "st"), ("target", target, "ts")):
        manifest = pair_writer.write_translated_shards(
            pairs_dir, kind, domain.dataset(), domain.num_examples, fns[direction], batch_size=batch_size,
            shard_size=shard_size, fingerprint=fingerprint, progress=progress, worker=worker)
    if worker[1] > 1:
        workers.barrier(strategy)  # every worker's shards are written
        if workers.is_chief(strategy):
            pair_writer.merge_worker_shards(pairs_dir, worker[1])
        workers.barrier(strategy)  # the manifest is complete
        manifest = pairs.read_manifest(pairs_dir)
    seconds = time.perf_counter() - t0
    return {"translated": sum(manifest["counts"].values()), "translate_seconds": seconds,
            "shards": {k: len(v) for k, v in manifest["shards"].items()}}


def run_cyclegan(cfg, log=print):
    """The whole stage from a ``daaa_tf.config.CycleGANConfig``: trains (or resumes) into ``cfg.out_dir``, then
    translates both training sets into ``cfg.pairs_dir``. Returns the metrics (also in out_dir/metrics.json).

    With ``cfg.semantic_weight`` > 0 (beyond the paper) the frozen source network ``cfg.source_model`` (an
    ``cfg.arch``) adds CyCADA's semantic consistency to the generators' loss."""
    from daaa_tf.data import load_domain

    runtime.set_seed(cfg.seed)
    runtime.set_precision(cfg.precision)
    strategy = runtime.make_strategy(cfg.strategy)
    domains = [conform_domain(load_domain(spec, "train", cfg.image_size, role=role), cfg.image_size,
                              cfg.on_size_mismatch, f"--{role}")
               for spec, role in ((cfg.source, "source"), (cfg.target, "target"))]
    semantic_net = None
    if cfg.semantic_weight:
        from daaa_tf.models import load_classifier

        semantic_net = load_classifier(cfg.source_model)
    _check_batch(cfg, strategy)  # before the run directory is claimed
    # another run with other settings: refused (or moved aside)
    fp, state = run_fingerprint.claim(cfg.out_dir, cfg, strategy=strategy)
    try:
        model, metrics = train_cyclegan(cfg, *domains, cfg.out_dir, strategy, semantic_net=semantic_net,
                                        semantic_arch=cfg.arch)
    except StageError:  # e.g. checkpoints of other networks in a run from before fingerprints: record nothing
        if state == "new" and workers.is_chief(strategy):
            os.remove(os.path.join(cfg.out_dir, run_fingerprint.FILE))
        raise
    log(f"cyclegan: {metrics['step']} steps -> {cfg.out_dir} (samples.png, g_st.keras, g_ts.keras)")
    metrics["translation"] = translate_domains(
        model, *domains, cfg.pairs_dir, batch_size=cfg.translate_batch_size, shard_size=cfg.shard_size,
        fingerprint={"source": cfg.source, "target": cfg.target, "image_size": cfg.image_size,
                     "run": hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]},
        strategy=strategy)
    if workers.is_chief(strategy):
        write_json(os.path.join(cfg.out_dir, "metrics.json"), metrics)
    workers.barrier(strategy)  # the chief's artifacts exist before any worker goes on (e.g. to the next stage)
    t = metrics["translation"]
    log(f"pairs: {t['translated']} images translated in {t['translate_seconds']:.0f} s -> {cfg.pairs_dir}")
    return metrics
