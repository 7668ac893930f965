"""The RevGrad / DANN baseline stage: train from the source network, evaluate on the target, write artifacts.

The model (gradient reversal, lambda schedule, domain classifier, ``RevGrad``) is ``daaa_tf.method.revgrad``; its
batches come from ``daaa_tf.data.pipelines.revgrad_dataset``. Resume and outputs follow docs/design.md,
"Stages and artifacts" and "Resume contract".
"""

import dataclasses
import json
import os
import time

import keras

from daaa_tf import StageError, UserError, io, runtime, workers
from daaa_tf.config import RevGradConfig
from daaa_tf.data import load_domain
from daaa_tf.data.pipelines import batch_counts, revgrad_dataset
from daaa_tf.method.revgrad import DEFAULT_HIDDEN, build_revgrad
from daaa_tf.models import load_classifier, model_spec
from daaa_tf.stages import fingerprint
from daaa_tf.stages.callbacks import Backup, NaNGuard, StepScalars

__all__ = ["RevGradConfig", "run_revgrad"]


def _check_domains(cfg, source_net, src_train, tgt_train, tgt_test):
    spec = model_spec(source_net)
    k = spec["num_classes"]
    for name, d in (("--source train", src_train), ("--target train", tgt_train), ("--target test", tgt_test)):
        if d.num_classes != k:
            raise UserError(f"{name} ({cfg.source if 'source' in name else cfg.target}) has {d.num_classes} "
                            f"classes but the source model {cfg.source_model} predicts {k}")
    want = spec["image_size"]
    if want != (cfg.image_size, cfg.image_size):
        raise UserError(f"--image_size={cfg.image_size} but the source model {cfg.source_model} takes {want}")


def run_revgrad(cfg: RevGradConfig):
    """Trains (resuming from ``out_dir/backup``), evaluates on the target test set every epoch, writes
    ``model.keras`` (the adapted label classifier) and ``metrics.json`` (the adaptation stage's keys)."""
    runtime.set_seed(cfg.seed)
    runtime.set_precision(cfg.precision)
    strategy = runtime.make_strategy(cfg.strategy)
    source_net = load_classifier(cfg.source_model)
    src_train = load_domain(cfg.source, "train", cfg.image_size, role="source")
    tgt_train = load_domain(cfg.target, "train", cfg.image_size, role="target")
    tgt_test = load_domain(cfg.target, "test", cfg.image_size, role="target")
    _check_domains(cfg, source_net, src_train, tgt_train, tgt_test)
    # another run with other settings or inputs: refused (or moved aside)
    fingerprint.claim(cfg.out_dir, cfg, strategy=strategy)
    counts = batch_counts(cfg.batch_size, strategy.num_replicas_in_sync)
    model = build_revgrad(cfg, source_net, strategy)
    backup = Backup(os.path.join(cfg.out_dir, "backup"),
                    {"net": model.net, "domain": model.domain_head, "optimizer": model.optimizer},
                    strategy=strategy)
    initial_epoch = backup.restore()
    if initial_epoch:
        print(f"resuming RevGrad after epoch {initial_epoch} (step {int(model.optimizer.iterations.numpy())}) "
              f"from {cfg.out_dir}/backup")
    train = workers.fit_input(
        revgrad_dataset(src_train, tgt_train, counts, cfg.seed, initial_epoch * cfg.steps_per_epoch))
    val = workers.fit_input(tgt_test.dataset().batch(cfg.eval_batch_size))
    tb_dir = workers.private_dir(os.path.join(cfg.out_dir, "tensorboard"), strategy)  # the chief's, or scratch
    guard = NaNGuard(cfg.log_every)
    start = time.time()
    model.fit(train, epochs=cfg.epochs, steps_per_epoch=cfg.steps_per_epoch,
              initial_epoch=initial_epoch, validation_data=val, shuffle=False,
              callbacks=[StepScalars(os.path.join(tb_dir, "train"), cfg.log_every), guard, backup,
                         keras.callbacks.TensorBoard(tb_dir, profile_batch=tuple(cfg.profile_steps) or 0)],
              verbose=runtime.fit_verbosity())
    if guard.bad_step is not None:
        raise StageError(f"the RevGrad loss became NaN/inf by step {guard.bad_step}; the last good state is "
                           f"kept in {cfg.out_dir}/backup (lower --lr or --revgrad_weight and rerun to resume)")
    src_test = load_domain(cfg.source, "test", cfg.image_size, role="source")
    source_test = model.evaluate(workers.fit_input(src_test.dataset().batch(cfg.eval_batch_size)), verbose=0,
                                 return_dict=True)
    workers.release(tb_dir, strategy)
    with workers.artifact_path(os.path.join(cfg.out_dir, "model.keras"), strategy) as tmp:
        model.net.save(tmp)
    hist = backup.history  # every epoch, those before a resume included (restored from the backup)
    metrics = {
        "target_test_accuracy": float(hist["val_accuracy"][-1]),
        "source_test_accuracy": float(source_test["accuracy"]),
        "history": hist, "counts": counts, "global_batch": cfg.batch_size,
        "steps": int(model.optimizer.iterations.numpy()),
        "train_seconds": time.time() - start,
        "final_lambda": float(model.current_lambda()),
        "domain_features": model.features_description,
        "domain_hidden": list(tuple(cfg.hidden) or DEFAULT_HIDDEN.get(cfg.arch, (100,))),
        "config": json.loads(json.dumps(dataclasses.asdict(cfg), default=list)),
        "code": runtime.code_version(),
    }
    if workers.is_chief(strategy):
        io.write_json(os.path.join(cfg.out_dir, "metrics.json"), metrics)
    workers.barrier(strategy)  # the chief's artifacts exist before any worker goes on (e.g. to the next stage)
    return metrics

