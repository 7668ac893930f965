"""The RevGrad / DANN baseline (Ganin & Lempitsky, ICML 2015) in the same harness and data as DAAA (Table 1-2).

The label classifier is the project's classifier (digit CNN / ResNet-50), started from the trained source network.
A small domain-classifier MLP reads the classifier's *penultimate features* through a gradient-reversal layer:
the digit CNN's flattened ``pool3`` output (the input of its conv classifier, 4x4x128 = 2048-d at 32x32, as Ganin &
Lempitsky's MNIST domain classifier reads the flattened conv features; its global average pool, 128-d, left the
domain classifier too weak on the demo: target accuracy fell below the source network's), ResNet-50's ``avg_pool``
output (2048-d); another architecture falls back to the global-average-pooled last attention tap.

Loss of one global batch of B images (n_s labelled sources, n_t = B - n_s unlabelled targets), each term a sum
over its samples divided by the *global* batch B (DESIGN section 4, so it is exact under a tf.distribute
strategy):  L = [sum_s CE(y_s, f(x_s)) + w * sum_{s,t} BCE(d_i, D(R_lambda(g(x_i))))] / B,
with R_lambda the gradient reversal (identity forward, -lambda * gradient backward), d = 0 source / 1 target,
lambda = 2 / (1 + exp(-gamma p)) - 1, p in [0, 1] the training progress, and the learning rate
eta0 * (1 + alpha p)^-power (Ganin's annealing; ``RestartableAnnealing`` without restarts).
"""

import dataclasses
import json
import os
import time

import keras
import tensorflow as tf

from daaa_tf import io, runtime
from daaa_tf.config import RevGradConfig
from daaa_tf.data import load_domain
from daaa_tf.method import losses
from daaa_tf.method.daaa import target_test_step
from daaa_tf.method.schedules import RestartableAnnealing, make_optimizer
from daaa_tf.models import build_classifier, head_variable_ids, load_classifier, preprocess
from daaa_tf.stages.callbacks import NaNGuard, StepScalars
from daaa_tf.stages.resume import Backup

DEFAULT_HIDDEN = {"digit_cnn": (100,), "resnet50": (1024, 1024)}  # Ganin & Lempitsky's domain classifiers


def gradient_reversal(x, lam):
    """The gradient-reversal layer R_lambda: forward R(x) = x, backward dR/dx = -lambda * I."""
    lam = tf.convert_to_tensor(lam, tf.float32)

    @tf.custom_gradient
    def _reverse(x, lam):
        def grad(dy):
            return -tf.cast(lam, dy.dtype) * dy, tf.zeros_like(lam)

        return tf.identity(x), grad

    return _reverse(x, lam)


def dann_lambda(progress, gamma=10.0):
    """DANN's adaptation factor lambda_p = 2 / (1 + exp(-gamma p)) - 1, p = training progress in [0, 1]."""
    p = tf.clip_by_value(tf.cast(progress, tf.float32), 0.0, 1.0)
    return 2.0 / (1.0 + tf.exp(-float(gamma) * p)) - 1.0


def domain_loss_sum(domain_labels, domain_logits):
    """Domain-classifier loss: sum_i BCE(d_i, sigmoid(z_i)) (d = 0 source, 1 target), a sum over samples."""
    z = tf.reshape(tf.cast(domain_logits, tf.float32), [-1])
    d = tf.reshape(tf.cast(domain_labels, tf.float32), [-1])
    return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=d, logits=z))


def penultimate_features(net):
    """(symbolic penultimate features of ``net``, a description): the input of the classifier head."""
    names = {lyr.name for lyr in net.layers}
    if "avg_pool" in names:  # ResNet-50: global-average-pooled conv5 output, the input of the new head
        return net.get_layer("avg_pool").output, "avg_pool (global-average-pooled conv5 output)"
    if "pool3" in names:  # digit CNN: the pooled conv3 features, the input of the conv classifier
        flat = keras.layers.Flatten(name="revgrad_flatten")(net.get_layer("pool3").output)
        return flat, "flattened pool3 (the input of the conv classifier)"
    gap = keras.layers.GlobalAveragePooling2D(name="revgrad_gap")
    return gap(net.output["taps"][-1]), "global average pool of the last attention tap"


def feature_model(net):
    """``x -> {"logits", "features"}`` sharing ``net``'s layers; features = the penultimate representation."""
    feats, _ = penultimate_features(net)
    return keras.Model(net.input, {"logits": net.output["logits"], "features": feats}, name="revgrad_features")


def build_domain_classifier(feature_dim, hidden=(100,), dropout=0.0):
    """The domain classifier D: MLP feature_dim -> hidden (ReLU, optional dropout) ... -> 1 logit (float32)."""
    layers = [keras.Input((int(feature_dim),), name="features")]
    for i, h in enumerate(hidden, 1):
        layers.append(keras.layers.Dense(int(h), activation="relu", name=f"domain_fc{i}"))
        if dropout:
            layers.append(keras.layers.Dropout(float(dropout), name=f"domain_dropout{i}"))
    layers.append(keras.layers.Dense(1, name="domain_logit", dtype="float32"))
    return keras.Sequential(layers, name="domain_classifier")


class RevGrad(keras.Model):
    """Label classifier ``net`` + domain classifier behind a gradient reversal, trained on source + target.

    ``global_batch``: B; ``total_steps``: the number of updates of the run (p = step / total_steps drives both
    lambda and, through the optimizer's schedule, the learning rate). ``grad_multipliers``: {id(variable): factor}.
    """

    def __init__(self, net, domain_head, arch, global_batch, total_steps, gamma=10.0, domain_weight=1.0,
                 grad_multipliers=None, schedule=None, **kwargs):
        super().__init__(name="revgrad", **kwargs)
        if global_batch < 2 or total_steps < 1:
            raise ValueError(f"RevGrad needs a global batch >= 2 and >= 1 step, got {global_batch}, {total_steps}")
        self.net, self.domain_head, self.arch = net, domain_head, arch
        feats, self.features_description = penultimate_features(net)
        self.extractor = keras.Model(net.input, {"logits": net.output["logits"], "features": feats},
                                     name="revgrad_features")
        self.global_batch, self.total_steps = int(global_batch), int(total_steps)
        self.gamma, self.domain_weight = float(gamma), float(domain_weight)
        self._multipliers = dict(grad_multipliers or {})
        self.schedule = schedule
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "ce", "domain", "lambda")}
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.domain_tracker = keras.metrics.BinaryAccuracy(name="domain_accuracy", threshold=0.0)
        self.built = True

    @property
    def metrics(self):
        return [*self.trackers.values(), self.accuracy_tracker, self.domain_tracker]

    def call(self, x, training=False):
        return self.net(x, training=training)

    @property
    def update_variables(self):
        return self.net.trainable_variables + self.domain_head.trainable_variables

    def current_lambda(self):
        return dann_lambda(tf.cast(self.optimizer.iterations, tf.float32) / float(self.total_steps), self.gamma)

    def current_learning_rate(self):
        lr = self.optimizer.learning_rate
        return lr(self.optimizer.iterations) if callable(lr) else lr

    def compute_losses(self, data, lam, training=True):
        """Returns ({"ce", "domain"} sums over this replica's samples, source logits, domain labels, domain logits)."""
        xs, xt = preprocess(data["xs"], self.arch), preprocess(data["xt"], self.arch)
        n_s, n_t = tf.shape(xs)[0], tf.shape(xt)[0]
        out = self.extractor(tf.concat([xs, xt], axis=0), training=training)
        src_logits = out["logits"][:n_s]
        ce = losses.cross_entropy_sum(data["ys"], src_logits)
        d_logits = self.domain_head(gradient_reversal(out["features"], lam), training=training)
        d_labels = tf.concat([tf.zeros([n_s, 1]), tf.ones([n_t, 1])], axis=0)
        return {"ce": ce, "domain": domain_loss_sum(d_labels, d_logits)}, src_logits, d_labels, d_logits

    def train_step(self, data):
        data, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.update_variables
        lam = self.current_lambda()
        with tf.GradientTape() as tape:
            sums, src_logits, d_labels, d_logits = self.compute_losses(data, lam, training=True)
            terms = {k: v / self.global_batch for k, v in sums.items()}
            loss = terms["ce"] + self.domain_weight * terms["domain"]
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        if self._multipliers:
            grads = [g * self._multipliers.get(id(v), 1.0) if g is not None else g for g, v in zip(grads, variables)]
        self.optimizer.apply(grads, variables)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        # Each replica holds (its sum) / B; the Mean trackers average over replicas, so feed replicas * value.
        self.trackers["loss"].update_state(loss * replicas)
        for k in ("ce", "domain"):
            self.trackers[k].update_state(terms[k] * replicas)
        self.trackers["lambda"].update_state(lam)
        self.accuracy_tracker.update_state(data["ys"], src_logits)
        self.domain_tracker.update_state(d_labels, d_logits)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        """Target-test evaluation: ``val_accuracy`` is the target accuracy, ``val_loss`` its cross-entropy."""
        return target_test_step(self.net, self.arch, data, self.trackers["loss"], self.accuracy_tracker)


def batch_counts(batch_size, num_replicas=1):
    """{"s": n_s, "t": n_t}: half source, half target; each >= 1 and a multiple of the number of replicas."""
    n_s = batch_size // 2
    counts = {"s": n_s, "t": batch_size - n_s}
    for k, n in counts.items():
        if n < 1 or n % num_replicas:
            raise ValueError(f"--batch_size={batch_size}: RevGrad splits it into {counts['s']} source + "
                             f"{counts['t']} target images; each needs >= 1 and a multiple of the {num_replicas} "
                             f"replica(s) ({k!r} has {n}): use a multiple of {2 * num_replicas}")
    return counts


def revgrad_dataset(source, target, counts, seed=0, skip_batches=0):
    """Infinite deterministic global batches {"xs": uint8, "ys": int32, "xt": uint8} from two ``Domain``s."""
    def stream(domain, n, s):
        ds = domain.dataset().shuffle(min(max(domain.num_examples, 1), 20000), seed=s,
                                      reshuffle_each_iteration=True)
        return ds.repeat().batch(n, drop_remainder=True)

    ds = tf.data.Dataset.zip((stream(source, counts["s"], seed), stream(target, counts["t"], seed + 1)))
    ds = ds.skip(skip_batches)  # a resumed run sees exactly the batches it would have seen
    ds = ds.map(lambda s, t: {"xs": s[0], "ys": tf.cast(s[1], tf.int32), "xt": t[0]},
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def build_revgrad(cfg, source_net, strategy):
    """The compiled RevGrad model, its label classifier started from ``source_net``'s weights."""
    num_classes = source_net.output["logits"].shape[-1]
    hidden = tuple(cfg.hidden) or DEFAULT_HIDDEN.get(cfg.arch, (100,))
    total_steps = cfg.epochs * cfg.steps_per_epoch
    with strategy.scope():
        net = build_classifier(cfg.arch, num_classes, cfg.image_size, None, cfg.attention_layers)
        net.set_weights(source_net.get_weights())
        feature_dim = feature_model(net).output["features"].shape[-1]
        domain_head = build_domain_classifier(feature_dim, hidden, cfg.dropout)
        schedule = RestartableAnnealing(cfg.lr, total_steps, cfg.lr_alpha, cfg.lr_power)
        optimizer = make_optimizer(cfg.optimizer, schedule)
        multipliers = None
        if cfg.head_lr_mult != 1.0:  # the new layers (label head, domain classifier) at head_lr_mult x the rate
            multipliers = {i: cfg.head_lr_mult for i in head_variable_ids(net)}
            multipliers.update({id(v): cfg.head_lr_mult for v in domain_head.trainable_variables})
        model = RevGrad(net, domain_head, cfg.arch, cfg.batch_size, total_steps, cfg.gamma, cfg.domain_weight,
                        multipliers, schedule)
        model.compile(optimizer=optimizer, jit_compile=False)
        optimizer.build(model.update_variables)
    return model


def _check_domains(cfg, source_net, src_train, tgt_train, tgt_test):
    k = source_net.output["logits"].shape[-1]
    for name, d in (("--source train", src_train), ("--target train", tgt_train), ("--target test", tgt_test)):
        if d.num_classes != k:
            raise ValueError(f"{name} ({cfg.source if 'source' in name else cfg.target}) has {d.num_classes} "
                             f"classes but the source model {cfg.source_model} predicts {k}")
    want = tuple(source_net.input.shape[1:3])
    if want != (cfg.image_size, cfg.image_size):
        raise ValueError(f"--image_size={cfg.image_size} but the source model {cfg.source_model} takes {want}")


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
    counts = batch_counts(cfg.batch_size, strategy.num_replicas_in_sync)
    model = build_revgrad(cfg, source_net, strategy)
    os.makedirs(cfg.out_dir, exist_ok=True)
    backup = Backup(os.path.join(cfg.out_dir, "backup"),
                    {"net": model.net, "domain": model.domain_head, "optimizer": model.optimizer})
    initial_epoch = backup.restore()
    if initial_epoch:
        print(f"resuming RevGrad after epoch {initial_epoch} (step {int(model.optimizer.iterations)}) "
              f"from {cfg.out_dir}/backup")
    train = revgrad_dataset(src_train, tgt_train, counts, cfg.seed, initial_epoch * cfg.steps_per_epoch)
    val = tgt_test.dataset().batch(cfg.eval_batch_size)
    tb_dir = os.path.join(cfg.out_dir, "tensorboard")
    guard = NaNGuard()
    start = time.time()
    history = model.fit(train, epochs=cfg.epochs, steps_per_epoch=cfg.steps_per_epoch,
                        initial_epoch=initial_epoch, validation_data=val,
                        callbacks=[StepScalars(os.path.join(tb_dir, "train"), cfg.log_every), guard, backup,
                                   keras.callbacks.TensorBoard(tb_dir)],
                        verbose=runtime.fit_verbosity())
    if guard.bad_step is not None:
        raise RuntimeError(f"the RevGrad loss became NaN/inf at step {guard.bad_step}; the last good state is "
                           f"kept in {cfg.out_dir}/backup (lower --lr or --revgrad_weight and rerun to resume)")
    src_test = load_domain(cfg.source, "test", cfg.image_size, role="source")
    source_test = model.evaluate(src_test.dataset().batch(cfg.eval_batch_size), verbose=0, return_dict=True)
    with io.atomic_path(os.path.join(cfg.out_dir, "model.keras")) as tmp:
        model.net.save(tmp)
    previous = io.read_json(os.path.join(cfg.out_dir, "metrics.json"), {}) if initial_epoch else {}
    hist = previous.get("history", {})
    for k, v in history.history.items():
        hist[k] = hist.get(k, [])[:initial_epoch] + [float(x) for x in v]
    metrics = {
        "target_test_accuracy": float(hist["val_accuracy"][-1]),
        "source_test_accuracy": float(source_test["accuracy"]),
        "history": hist, "counts": counts, "global_batch": cfg.batch_size,
        "steps": int(model.optimizer.iterations),
        "train_seconds": time.time() - start + (previous.get("train_seconds", 0.0) if initial_epoch else 0.0),
        "final_lambda": float(model.current_lambda()),
        "domain_features": model.features_description,
        "domain_hidden": list(tuple(cfg.hidden) or DEFAULT_HIDDEN.get(cfg.arch, (100,))),
        "config": json.loads(json.dumps(dataclasses.asdict(cfg), default=list)),
    }
    io.write_json(os.path.join(cfg.out_dir, "metrics.json"), metrics)
    return metrics

