"""The DAAA keras.Model: one train step of L_full = L_CE + L_EM + beta * L_AT (Eq. 13).

Exact semantics: docs/design.md, "Eq. 13: L_full and its scale" and "Batch layout and pairing". A global batch
of B images mixed from four streams (``daaa_tf.data.mixing``); the frozen source net's maps of [x_s; x~s] (one
pass, or rows of the cache of ``daaa_tf.method.source_maps``), one target-net pass over [x_s; x~t; x_t; x~s], and
M_post on x_t. Every term is a sum over its samples divided by the *global* batch size B, so under a
tf.distribute strategy the replicas' gradients (summed by ``optimizer.apply``) equal the single-device gradient.
"""

import keras
import tensorflow as tf

from daaa_tf import UserError
from daaa_tf.method import losses
from daaa_tf.method.attention import attention_alignment_loss, attention_map
from daaa_tf.method.augment import colour_augment, step_seed
from daaa_tf.method.schedules import RestartableAnnealing, make_optimizer
from daaa_tf.method.source_maps import SourceMapCache, tap_widths
from daaa_tf.models import build_classifier, head_variable_ids, model_spec, preprocess
from daaa_tf.settings import augment_problem

AUGMENT_KEYS = {"s": "xs", "tf": "xtf", "t": "xt", "sf": "xsf"}


def _rows(t):
    """The number of rows of ``t``: static when known; a tensor when the batch dimension is not (a dataset
    distributed by MultiWorkerMirroredStrategy can lose its static per-replica batch size)."""
    return t.shape[0] if t.shape[0] is not None else tf.shape(t)[0]


class DAAA(keras.Model):
    """Target network trained against a frozen source network and an asynchronously updated M_post.

    target, source, posterior: classifiers ``x -> {"logits", "taps"}`` of the same architecture; the target and
    M_post start from the source's weights. ``global_batch``: B. ``grad_multipliers``: {id(variable): factor},
    e.g. 10 for a new head trained at 10x the backbone's rate under SGD (JAN protocol). ``schedule``: the
    optimizer's ``RestartableAnnealing`` schedule. M_post is updated (Eq. 11), L_EM switched on and the schedule
    restarted by ``daaa_tf.method.posterior.PosteriorSync``, the one owner of that rule.
    """

    def __init__(self, target, source, posterior, arch, global_batch, beta=1.0, criterion="l2",
                 threshold=0.95, grad_multipliers=None, schedule=None, augment_streams=(), augment_seed=0,
                 augment_cutout=0.0, augment_shift=0, **kwargs):
        super().__init__(name="daaa", **kwargs)
        if beta < 0:
            raise UserError(f"--beta must be >= 0, got {beta}")
        if not 0.0 <= threshold <= 1.0:
            raise UserError(f"--threshold (p_t) must be in [0, 1], got {threshold}")
        self.target, self.source, self.posterior = target, source, posterior
        self.source.trainable = False
        self.posterior.trainable = False
        self.arch = arch
        self.global_batch = int(global_batch)
        self.beta = float(beta)
        self.criterion = criterion
        self.threshold = tf.Variable(float(threshold), trainable=False, name="threshold")
        self.em_active = tf.Variable(0.0, trainable=False, name="em_active")
        self._multipliers = dict(grad_multipliers or {})
        self.schedule = schedule
        unknown = set(augment_streams) - set(AUGMENT_KEYS)
        if unknown:
            raise UserError(f"--augment_streams: expected some of {','.join(AUGMENT_KEYS)}, got {sorted(unknown)}")
        self.augment_keys = [AUGMENT_KEYS[s] for s in AUGMENT_KEYS if s in augment_streams]
        self.augment_seed = int(augment_seed)
        self.augment_cutout = float(augment_cutout)
        self.augment_shift = int(augment_shift)
        problem = augment_problem(self.augment_cutout, self.augment_keys, self.augment_shift, self.beta)
        if problem:
            raise UserError(problem)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in
                         ("loss", "ce", "em", "at", "kept")}
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.source_map_cache = None
        self.built = True

    # ----------------------------------------------------------------------------------------------------
    @property
    def metrics(self):
        return [*self.trackers.values(), self.accuracy_tracker]

    def call(self, x, training=False):
        return self.target(x, training=training)

    def current_learning_rate(self):
        lr = self.optimizer.learning_rate
        return lr(self.optimizer.iterations) if callable(lr) else lr

    # ----------------------------------------------------------------------------------------------------
    def compute_losses(self, data, training=True):
        """Returns (sums, extras): per-term sums over this replica's samples and the pieces for the trackers."""
        x = {k: preprocess(v, self.arch) for k, v in data.items() if k.startswith("x")}
        order = [k for k in ("xs", "xtf", "xt", "xsf") if k in x]
        sizes = [_rows(x[k]) for k in order]
        out = self.target(tf.concat([self._target_input(data, x, k, training) for k in order], axis=0),
                          training=training)
        logits = dict(zip(order, tf.split(out["logits"], sizes)))
        taps = {k: [] for k in order}
        for feat in out["taps"]:  # one map per tap on the whole batch, then split (row-wise, so identical)
            for k, part in zip(order, tf.split(attention_map(feat), sizes)):
                taps[k].append(part)

        # Eq. 6: L_CE on x_s and x~t with the source labels.
        ce = tf.constant(0.0)
        labelled_logits, labelled_y = [], []
        for xk, yk in (("xs", "ys"), ("xtf", "ytf")):
            if xk in logits:
                ce += losses.cross_entropy_sum(data[yk], logits[xk])
                labelled_logits.append(logits[xk])
                labelled_y.append(data[yk])

        # Eq. 12: L_EM with soft M_post posteriors, thresholded (off before the first sync).
        em, kept = tf.constant(0.0), None
        if "xt" in logits:
            q = tf.nn.softmax(tf.cast(self.posterior(x["xt"], training=False)["logits"], tf.float32))
            mask = losses.posterior_mask(q, self.threshold, self.em_active)
            em += losses.em_loss_sum(q, logits["xt"], mask)
            kept = mask
            if "xsf" in logits:
                n_sf = sizes[order.index("xsf")]
                em += losses.em_loss_sum(q[:n_sf], logits["xsf"], mask[:n_sf])

        # Eq. 4-5: L_AT over the four pair families, the left image through the source net.
        at = tf.constant(0.0)
        src_keys = [k for k in ("xs", "xsf") if k in x]
        if src_keys:
            src = self._source_maps(data, x, src_keys)
            families = []
            for left, right in (("xs", "xs"), ("xs", "xtf"), ("xsf", "xsf"), ("xsf", "xt")):
                if left in src and right in taps:
                    n = tf.minimum(_rows(x[left]), _rows(x[right]))
                    families.append(([a[:n] for a in src[left]], [b[:n] for b in taps[right]]))
            at = attention_alignment_loss(families, self.criterion)
        extras = {"kept": kept, "logits": labelled_logits, "labels": labelled_y}
        return {"ce": ce, "em": em, "at": at}, extras

    def _source_maps(self, data, x, keys):
        """{key: [maps per tap]} of the frozen source network on x_s / x~s: gathered from the cache of
        ``use_source_map_cache`` when the batch carries record indices, else one pass over [x_s; x~s]."""
        if self.source_map_cache is not None and self.source_map_cache.covers(data, keys):
            return {k: self.source_map_cache.lookup(data, k) for k in keys}
        out = self.source(tf.concat([x[k] for k in keys], axis=0), training=False)
        src = {k: [] for k in keys}
        for feat in out["taps"]:
            for k, part in zip(keys, tf.split(tf.stop_gradient(attention_map(feat)), [_rows(x[k]) for k in keys])):
                src[k].append(part)
        return src

    def use_source_map_cache(self, maps):
        """Installs the source network's maps of every pair image ({"xs", "xsf"}: [N, D] arrays from
        ``daaa_tf.method.source_maps.source_map_cache``); call under the strategy's scope, before ``fit``."""
        self.source_map_cache = SourceMapCache(maps, tap_widths(self.source))

    def _target_input(self, data, x, key, training):
        """The target network's input for stream ``key``: colour-augmented when asked (M_post and the source
        net always see the clean image, so augmenting x_t turns L_EM into a weak/strong consistency loss)."""
        if not (training and key in self.augment_keys):
            return x[key]
        seed = step_seed(self.augment_seed, self.optimizer.iterations) + [self.augment_keys.index(key) * 7919, 0]
        return preprocess(colour_augment(data[key], seed, self.augment_cutout, self.augment_shift), self.arch)

    def train_step(self, data):
        data, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.target.trainable_variables
        with tf.GradientTape() as tape:
            sums, extras = self.compute_losses(data, training=True)
            terms = {k: v / self.global_batch for k, v in sums.items()}
            loss = terms["ce"] + terms["em"]
            if self.beta:  # at beta = 0, L_AT is only logged: no backward pass through the attention maps
                loss += self.beta * terms["at"]
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        if self._multipliers:  # only the listed variables: a x1.0 multiply per backbone tensor costs a full pass
            grads = [g * self._multipliers[id(v)] if g is not None and id(v) in self._multipliers else g
                     for g, v in zip(grads, variables)]
        self.optimizer.apply(grads, variables)
        return self._update_trackers(loss, terms, extras)

    def _update_trackers(self, loss, terms, extras):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        # Each replica holds (its sum) / B; trackers average over replicas, so feed replicas * value.
        self.trackers["loss"].update_state(loss * replicas)
        for k in ("ce", "em", "at"):
            self.trackers[k].update_state(terms[k] * replicas)
        if extras["kept"] is not None:
            self.trackers["kept"].update_state(extras["kept"])
        if extras["logits"]:
            self.accuracy_tracker.update_state(tf.concat(extras["labels"], 0), tf.concat(extras["logits"], 0))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        """Target-test evaluation: ``val_accuracy`` is the target accuracy, ``val_loss`` its cross-entropy."""
        return target_test_step(self.target, self.arch, data, self.trackers["loss"], self.accuracy_tracker)


def target_test_step(net, arch, data, loss_tracker, accuracy_tracker):
    """One evaluation batch (uint8 images, labels) of a classifier: updates and returns loss and accuracy."""
    images, labels = data
    logits = net(preprocess(images, arch), training=False)["logits"]
    ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(labels, tf.int32),
                                                                       tf.cast(logits, tf.float32)))
    loss_tracker.update_state(ce)
    accuracy_tracker.update_state(labels, logits)
    return {"loss": loss_tracker.result(), "accuracy": accuracy_tracker.result()}


def build_daaa(cfg, source_net, strategy):
    """Builds the compiled DAAA model and the per-stream batch counts from an ``AdaptConfig``-like ``cfg``.

    Target, source and M_post are all built from the source weights under the current dtype policy.
    """
    num_replicas = strategy.num_replicas_in_sync
    from daaa_tf.data.mixing import stream_counts

    counts = stream_counts(cfg.batch_size, cfg.proportions, cfg.streams, num_replicas)
    spec = model_spec(source_net)
    with strategy.scope():
        nets = [build_classifier(cfg.arch, spec["num_classes"], cfg.image_size, None, cfg.attention_layers,
                                 spec["widths"])
                for _ in range(3)]
        for net in nets:
            net.set_weights(source_net.get_weights())
        target, source, posterior = nets
        total_steps = cfg.epochs * cfg.steps_per_epoch
        schedule = RestartableAnnealing(cfg.lr, cfg.sync_every if cfg.restart_lr else total_steps,
                                        cfg.lr_alpha, cfg.lr_power)
        optimizer = make_optimizer(cfg.optimizer, schedule)
        multipliers = ({i: cfg.head_lr_mult for i in head_variable_ids(target)}
                       if cfg.head_lr_mult != 1.0 else None)
        model = DAAA(target, source, posterior, cfg.arch, cfg.batch_size, beta=cfg.beta,
                     criterion=cfg.attention_criterion, threshold=cfg.threshold,
                     grad_multipliers=multipliers, schedule=schedule,
                     augment_streams=tuple(getattr(cfg, "augment_streams", ())),
                     augment_seed=getattr(cfg, "seed", 0), augment_cutout=getattr(cfg, "augment_cutout", 0.0),
                     augment_shift=getattr(cfg, "augment_shift", 0))
        model.compile(optimizer=optimizer, jit_compile=False)
        optimizer.build(target.trainable_variables)
    return model, counts
