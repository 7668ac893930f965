"""Stage 3: adapt the target network with L_CE + L_EM + beta * L_AT (Eq. 13) from the CycleGAN pair shards."""

import dataclasses
import json
import os
import time

import keras
import numpy as np

from daaa_tf import StageError, UserError, io, runtime, workers
from daaa_tf.config import AdaptConfig
from daaa_tf.data import load_domain
from daaa_tf.data.mixing import adaptation_dataset
from daaa_tf.data.pairs import read_manifest
from daaa_tf.method.daaa import build_daaa
from daaa_tf.method.posterior import PosteriorSync
from daaa_tf.method.source_maps import source_map_cache
from daaa_tf.models import load_classifier, model_spec
from daaa_tf.stages import fingerprint
from daaa_tf.stages.callbacks import AttentionImages, Backup, NaNGuard, StepScalars


def _check_inputs(cfg, source_net):
    manifest = read_manifest(cfg.pairs_dir, verify=True)  # a changed shard: one line here, not DataLossError in fit
    shape = tuple(manifest.get("image_shape", ()))
    want = (*model_spec(source_net)["image_size"], 3)
    if shape and shape != want:
        raise UserError(f"pair shards in {cfg.pairs_dir} hold {shape} images but the source model "
                        f"{cfg.source_model} takes {want}: rerun trainers.cyclegan with --image_size={want[0]}")
    return manifest


def run_adaptation(cfg: AdaptConfig, extra_callbacks=()):
    """Trains (resuming from ``out_dir/backup`` if present), evaluates on the target test set every epoch,
    writes model.keras (the adapted target network) and metrics.json. Returns the metrics dict.

    ``extra_callbacks`` run after the built-in ones (M_post sync, step scalars, NaN guard, backup, TensorBoard).
    """
    runtime.set_seed(cfg.seed)
    runtime.set_precision(cfg.precision or "float32")  # empty: a config built without --precision
    strategy = runtime.make_strategy(cfg.strategy)
    source_net = load_classifier(cfg.source_model)
    manifest = _check_inputs(cfg, source_net)
    # another run with other settings or inputs: refused (or moved aside)
    fingerprint.claim(cfg.out_dir, cfg, strategy=strategy)
    model, counts = build_daaa(cfg, source_net, strategy)
    backup = Backup(os.path.join(cfg.out_dir, "backup"), {
        "target": model.target, "posterior": model.posterior, "optimizer": model.optimizer,
        "lr_offset": model.schedule.offset, "threshold": model.threshold, "em_active": model.em_active},
        strategy=strategy)
    cache_keys = [k for k, stream in (("xs", "s"), ("xsf", "sf")) if counts[stream]]
    maps = source_map_cache(model.source, cfg.pairs_dir, cfg.arch, cache_keys)
    cached = bool(maps)
    if cached:
        with strategy.scope():
            model.use_source_map_cache(maps)
    del maps  # the variables hold their own copy
    initial_epoch = backup.restore()
    if initial_epoch:
        print(f"resuming adaptation after epoch {initial_epoch} (step {int(model.optimizer.iterations.numpy())}) "
              f"from {cfg.out_dir}/backup")
    train = workers.fit_input(adaptation_dataset(cfg.pairs_dir, counts, strategy.num_replicas_in_sync,
                                                     cfg.seed, skip_batches=initial_epoch * cfg.steps_per_epoch,
                                                     with_index=cached))
    target_test = load_domain(cfg.target, "test", cfg.image_size, role="target")
    val = workers.fit_input(target_test.dataset().batch(cfg.eval_batch_size))
    fixed = np.stack([x for x, _ in target_test.dataset().take(cfg.num_attention_images).as_numpy_iterator()])
    tb_dir = workers.private_dir(os.path.join(cfg.out_dir, "tensorboard"), strategy)  # the chief's, or scratch
    sync = PosteriorSync(cfg.sync_every, cfg.restart_lr, log_dir=os.path.join(tb_dir, "train"))
    guard = NaNGuard(cfg.log_every)
    steps = StepScalars(os.path.join(tb_dir, "train"), cfg.log_every)
    tensorboard = keras.callbacks.TensorBoard(tb_dir, profile_batch=tuple(cfg.profile_steps) or 0)
    start = time.time()
    model.fit(train, epochs=cfg.epochs, steps_per_epoch=cfg.steps_per_epoch,
              initial_epoch=initial_epoch, validation_data=val, shuffle=False,
              callbacks=[sync, steps, guard, backup, tensorboard,
                         AttentionImages(os.path.join(tb_dir, "attention"), fixed, cfg.arch), *extra_callbacks],
              verbose=runtime.fit_verbosity())
    if guard.bad_step is not None:
        raise StageError(f"the adaptation loss became NaN/inf by step {guard.bad_step} (finite at step "
                         f"{guard.last_good_step}); the last good state is kept in {cfg.out_dir}/backup "
                         "(lower --lr or --beta and rerun to resume)")
    workers.release(tb_dir, strategy)
    with workers.artifact_path(os.path.join(cfg.out_dir, "model.keras"), strategy) as tmp:
        model.target.save(tmp)
    steps = int(model.optimizer.iterations.numpy())
    metrics = {
        "target_test_accuracy": float(backup.history["val_accuracy"][-1]),
        "history": backup.history, "counts": counts, "global_batch": cfg.batch_size,
        "syncs": PosteriorSync.sync_steps(cfg.sync_every, steps),
        "steps": steps, "train_seconds": time.time() - start,
        "pairs": {k: manifest.get("counts", {}).get(k) for k in ("source", "target")},
        "config": json.loads(json.dumps(dataclasses.asdict(cfg), default=list)),
        "code": runtime.code_version(),
    }
    if workers.is_chief(strategy):
        io.write_json(os.path.join(cfg.out_dir, "metrics.json"), metrics)
    workers.barrier(strategy)  # the chief's artifacts exist before any worker goes on (e.g. to the next stage)
    return metrics
