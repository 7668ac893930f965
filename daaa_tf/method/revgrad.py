"""The RevGrad / DANN baseline (Ganin & Lempitsky, ICML 2015) in the same harness and data as DAAA (Table 1-2).

The label classifier is the project's classifier (digit CNN / ResNet-50), started from the trained source network.
A small domain-classifier MLP reads the classifier's *penultimate features* through a gradient-reversal layer:
the digit CNN's flattened ``pool3`` output (the input of its conv classifier, 4x4x128 = 2048-d at 32x32, as Ganin &
Lempitsky's MNIST domain classifier reads the flattened conv features; its global average pool, 128-d, left the
domain classifier too weak on the demo: target accuracy fell below the source network's), ResNet-50's ``avg_pool``
output (2048-d).

Loss of one global batch of B images (n_s labelled sources, n_t = B - n_s unlabelled targets), each term a sum
over its samples divided by the *global* batch B (docs/design.md, "Eq. 13: L_full and its scale", so it is exact
under a tf.distribute strategy):  L = [sum_s CE(y_s, f(x_s)) + w * sum_{s,t} BCE(d_i, D(R_lambda(g(x_i))))] / B,
with R_lambda the gradient reversal (identity forward, -lambda * gradient backward), d = 0 source / 1 target,
lambda = 2 / (1 + exp(-gamma p)) - 1, p in [0, 1] the training progress, and the learning rate
eta0 * (1 + alpha p)^-power (Ganin's annealing; ``RestartableAnnealing`` without restarts).
"""


import keras
import tensorflow as tf

from daaa_tf import UserError
from daaa_tf.method import losses
from daaa_tf.method.daaa import target_test_step
from daaa_tf.method.schedules import RestartableAnnealing, make_optimizer
from daaa_tf.models import build_classifier, head_variable_ids, model_spec, preprocess

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
    arch = model_spec(net)["arch"]
    if arch == "resnet50":  # global-average-pooled conv5 output, the input of the new head
        return net.get_layer("avg_pool").output, "avg_pool (global-average-pooled conv5 output)"
    # digit CNN: the pooled conv3 features, the input of the conv classifier
    flat = keras.layers.Flatten(name="revgrad_flatten")(net.get_layer("pool3").output)
    return flat, "flattened pool3 (the input of the conv classifier)"


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
            raise UserError(f"RevGrad needs a global batch >= 2 and >= 1 step, got {global_batch}, {total_steps}")
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




def build_revgrad(cfg, source_net, strategy):
    """The compiled RevGrad model, its label classifier started from ``source_net``'s weights."""
    spec = model_spec(source_net)
    hidden = tuple(cfg.hidden) or DEFAULT_HIDDEN.get(cfg.arch, (100,))
    total_steps = cfg.epochs * cfg.steps_per_epoch
    with strategy.scope():
        net = build_classifier(cfg.arch, spec["num_classes"], cfg.image_size, None, cfg.attention_layers,
                               spec["widths"])
        net.set_weights(source_net.get_weights())
        feature_dim = penultimate_features(net)[0].shape[-1]
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
