"""Stage 1: train the source network on the labelled source domain (the paper's "source only" row)."""

import math
import os
import time

import keras

from daaa_tf import StageError, UserError, io, runtime, workers
from daaa_tf.config import SourceConfig
from daaa_tf.data import load_domain
from daaa_tf.data.pipelines import batched, epoch_batches
from daaa_tf.method.schedules import make_optimizer
from daaa_tf.models import build_classifier
from daaa_tf.stages import fingerprint
from daaa_tf.stages.callbacks import Backup


def train_source(cfg: SourceConfig):
    """Trains, evaluates on the source test and target test splits, writes model.keras and metrics.json.

    A run directory holding a run with other settings is refused (``fingerprint.claim``; --overwrite moves it
    aside); a complete run with the same settings is returned as it is (its metrics.json untouched)."""
    runtime.set_seed(cfg.seed)
    runtime.set_precision(cfg.precision)
    strategy = runtime.make_strategy(cfg.strategy)
    src_train = load_domain(cfg.source, "train", cfg.image_size, role="source")
    src_test = load_domain(cfg.source, "test", cfg.image_size, role="source")
    tgt_test = load_domain(cfg.target, "test", cfg.image_size, role="target")
    if src_train.num_classes != tgt_test.num_classes:
        raise UserError(f"--source {cfg.source} has {src_train.num_classes} classes but --target "
                        f"{cfg.target} has {tgt_test.num_classes}")
    if src_train.num_examples < cfg.batch_size:  # drop_remainder: not a single step per epoch
        raise UserError(f"--source_batch_size={cfg.batch_size} is larger than the source training set "
                        f"({cfg.source}: {src_train.num_examples} examples), so no step would be trained; "
                        f"use --source_batch_size <= {src_train.num_examples}")
    _, state = fingerprint.claim(cfg.out_dir, cfg, strategy=strategy)
    metrics_path = os.path.join(cfg.out_dir, "metrics.json")
    previous = io.read_json(metrics_path) if state == "same" else None
    if previous and previous.get("epochs") == cfg.epochs and io.gfile.exists(os.path.join(cfg.out_dir,
                                                                                         "model.keras")):
        print(f"the source stage in {cfg.out_dir} is complete with these settings; kept as it is "
              "(--overwrite does not redo a run with the same settings: use another --run_dir)")
        return previous
    with strategy.scope():
        model = build_classifier(cfg.arch, src_train.num_classes, cfg.image_size, cfg.weights,
                                 cfg.attention_layers, cfg.digit_widths)
        trainable = keras.Model(model.input, model.output["logits"], name=f"{model.name}_logits")
        optimizer = make_optimizer(cfg.optimizer, cfg.lr)
        trainable.compile(optimizer=optimizer, jit_compile=False,
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        optimizer.build(trainable.trainable_variables)
    backup = Backup(os.path.join(cfg.out_dir, "backup"), {"model": model, "optimizer": optimizer},
                    strategy=strategy)
    initial_epoch = backup.restore()
    if initial_epoch:
        print(f"resuming the source stage after epoch {initial_epoch} from {cfg.out_dir}/backup")
    start = time.time()
    tb_dir = workers.private_dir(os.path.join(cfg.out_dir, "tensorboard"), strategy)  # the chief's, or scratch
    history = trainable.fit(  # epoch e's order depends on (seed, e) only: a resumed run sees the same batches
        workers.fit_input(epoch_batches(src_train, cfg.arch, cfg.batch_size, cfg.seed, initial_epoch,
                                            cfg.epochs)),
        epochs=cfg.epochs, initial_epoch=initial_epoch, shuffle=False,  # the dataset is shuffled already
        steps_per_epoch=src_train.num_examples // cfg.batch_size,
        validation_data=workers.fit_input(batched(src_test, cfg.arch, cfg.eval_batch_size)),
        callbacks=[backup, keras.callbacks.TerminateOnNaN(),
                   keras.callbacks.TensorBoard(tb_dir, profile_batch=tuple(cfg.profile_steps) or 0)],
        verbose=runtime.fit_verbosity())
    workers.release(tb_dir, strategy)
    if any(not math.isfinite(v) for v in history.history.get("loss", [])):
        raise StageError(f"source training diverged (NaN loss); the last good epoch is kept in "
                           f"{cfg.out_dir}/backup — lower --lr and rerun")
    results = {}
    for name, domain in (("source_test", src_test), ("target_test", tgt_test)):
        _, acc = trainable.evaluate(workers.fit_input(batched(domain, cfg.arch, cfg.eval_batch_size)),
                                    verbose=0)
        results[f"{name}_accuracy"] = float(acc)
    with workers.artifact_path(os.path.join(cfg.out_dir, "model.keras"), strategy) as tmp:
        model.save(tmp)
    metrics = {**results, "epochs": cfg.epochs, "train_seconds": time.time() - start,
               "num_classes": src_train.num_classes, "arch": cfg.arch, "source": src_train.name,
               "target": tgt_test.name, "history": backup.history or history.history,
               "code": runtime.code_version()}
    if workers.is_chief(strategy):
        io.write_json(os.path.join(cfg.out_dir, "metrics.json"), metrics)
    workers.barrier(strategy)  # the chief's artifacts exist before any worker goes on (e.g. to the next stage)
    return metrics
