"""Adversarial data pairing (paper section 3.1): the CycleGAN model.

``CycleGAN`` is a ``keras.Model`` whose ``train_step`` does one step of Eq. 3 (plus CycleGAN's optional
identity term) for both generators and both discriminators, each network with its own optimizer.
Losses are batch means per replica; under a ``tf.distribute`` strategy the gradients are taken of the loss
divided by ``num_replicas_in_sync`` (``optimizer.apply`` sums the replicas' gradients), so one step on N
replicas equals one step on one device. Mean trackers receive the unscaled values.

The stage that trains it and writes the pair shards (``train_cyclegan``, ``translate_domains``) is
``daaa_tf.stages.cyclegan``.
"""


import keras
import tensorflow as tf

from daaa_tf import UserError
from daaa_tf.config import CycleGANConfig  # noqa: F401  (re-exported: built by build_cyclegan's callers)
from daaa_tf.method import losses
from daaa_tf.method.schedules import cyclegan_lr
from daaa_tf.models.gan_nets import ImagePool, build_discriminator, build_encoder, build_generator, to_float, to_uint8

NETWORKS = ("g_st", "g_ts", "d_s", "d_t")  # and "enc", the target encoder, when G^ST takes noise


class CycleGAN(keras.Model):
    """G^ST, G^TS, D^S, D^T trained by Eq. 1-3 (``gan_loss`` lsgan | bce) + optional identity loss.

    ``train_step`` takes ``(x_s, x_t)``: float batches in [-1, 1]. Call ``compile(optimizers={...})`` with one
    optimizer per network (keys ``self.networks``).

    Beyond the paper, a G^ST built with a noise input comes with ``encoder`` E (targets -> noise codes): G^ST
    sees z ~ N(0, 1) drawn per (seed, replica, step), the target cycle rebuilds x_t as G^ST(G^TS(x_t), E(x_t)),
    and ``latent_weight`` * |z - E(G^ST(x_s, z))| (the latent cycle) makes G^ST use z (BicycleGAN / Augmented
    CycleGAN), so its synthetic targets can vary as real targets do instead of collapsing to a few backgrounds.
    """

    def __init__(self, g_st, g_ts, d_s, d_t, cycle_weight=10.0, identity_weight=0.0, gan_loss="lsgan",
                 pool_size=50, seed=0, semantic_net=None, semantic_weight=0.0, semantic_arch="digit_cnn",
                 encoder=None, latent_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        if gan_loss not in losses.GAN_LOSSES:
            raise UserError(f"--gan_loss: expected one of {losses.GAN_LOSSES}, got {gan_loss!r}")
        self.g_st, self.g_ts, self.d_s, self.d_t = g_st, g_ts, d_s, d_t
        self.noise_shape = tuple(g_st.inputs[1].shape[1:]) if len(g_st.inputs) > 1 else None
        if (self.noise_shape is None) != (encoder is None):
            raise ValueError("CycleGAN: a noise-taking G^ST and the encoder go together")
        self.enc, self.latent_weight, self.seed = encoder, float(latent_weight), int(seed)
        self.networks = NETWORKS + (("enc",) if encoder is not None else ())
        self.cycle_weight, self.identity_weight = float(cycle_weight), float(identity_weight)
        self.gan_loss = gan_loss
        shape = tuple(g_st.inputs[0].shape[1:])
        self.pool_s = ImagePool(pool_size, shape, seed, name="pool_s") if pool_size else None
        self.pool_t = ImagePool(pool_size, shape, seed + 1, name="pool_t") if pool_size else None
        self.semantic_weight, self.semantic_arch = float(semantic_weight), semantic_arch
        if self.semantic_weight and semantic_net is None:
            raise UserError("--semantic_weight > 0 needs the source network (--source_model)")
        self.semantic_net = semantic_net if self.semantic_weight else None
        if self.semantic_net is not None:
            self.semantic_net.trainable = False
        names = ["g_st_adv", "g_ts_adv", "cycle", "g_total", "d_s", "d_t"]
        names += ["identity"] if self.identity_weight else []
        names += ["semantic"] if self.semantic_net is not None else []
        names += ["latent"] if self.enc is not None else []
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.built = True

    def call(self, x_s, training=False):
        """x_s -> G^ST(x_s)."""
        return self.st(x_s, training=training)

    def st(self, x, code=None, training=False):
        """G^ST(x); with a noise input G^ST(x, code), by default the image's own draw (``image_noise``)."""
        if self.noise_shape is None:
            return self.g_st(x, training=training)
        return self.g_st([x, self.image_noise(x) if code is None else code], training=training)

    def image_noise(self, x):
        """N(0, 1) codes, one per image of float batch ``x``, a function of (seed, the image's uint8 pixels) only:
        a translation does not depend on the batch it is in, and a resumed translation repeats it."""
        flat = tf.cast(tf.reshape(to_uint8(x), [tf.shape(x)[0], -1]), tf.int64)
        mix = (tf.range(1, tf.shape(flat)[1] + 1, dtype=tf.int64) * 2654435761) % 2147483647 + 1
        keys = tf.math.floormod(tf.reduce_sum(flat * mix, axis=1), 2147483647)
        return tf.map_fn(lambda k: tf.random.stateless_normal(self.noise_shape, tf.stack([self.seed, k])),
                         keys, fn_output_signature=tf.float32)

    def compile(self, optimizers, jit_compile=False, **kwargs):
        missing = set(self.networks) - set(optimizers)
        if missing:
            raise ValueError(f"CycleGAN.compile: optimizers missing for {sorted(missing)}")
        self.optimizers = {k: optimizers[k] for k in self.networks}
        for k in self.networks:
            self.optimizers[k].build(getattr(self, k).trainable_variables)
        # Keras' own optimizer slot is G^ST's: its ``iterations`` is the training step.
        super().compile(optimizer=self.optimizers["g_st"], jit_compile=jit_compile, auto_scale_loss=False,
                        **kwargs)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def checkpoint(self):
        """A tf.train.Checkpoint of everything a resumed run needs: networks, pools, all four optimizers."""
        return tf.train.Checkpoint(model=self, **{f"optimizer_{k}": o for k, o in self.optimizers.items()})

    @property
    def step(self):
        """The training step (G^ST's optimizer iterations), a variable."""
        return self.optimizers["g_st"].iterations

    def step_count(self):
        return int(tf.convert_to_tensor(self.step.value).numpy())

    def _gradients(self, tape, scaled, names):
        """Gradients of ``scaled[name]`` w.r.t. each named network; one tape pass unless losses are scaled."""
        nets = [getattr(self, n).trainable_variables for n in names]
        if all(scaled[n] is scaled[names[0]] for n in names):
            flat = tape.gradient(scaled[names[0]], [v for vs in nets for v in vs])
            out, i = [], 0
            for vs in nets:
                out.append(flat[i:i + len(vs)])
                i += len(vs)
            return out
        return [tape.gradient(scaled[n], vs) for n, vs in zip(names, nets)]

    def train_step(self, data):
        """One step of Eq. 3 (+ identity term): G^ST and G^TS descend L_GAN + lambda L_cyc, D^S and D^T the
        discriminator side of Eq. 1, all from one forward pass; each network updated by its own optimizer."""
        x_s, x_t = data
        x_s, x_t = tf.cast(x_s, tf.float32), tf.cast(x_t, tf.float32)
        n = tf.shape(x_s)[0]
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        gan = self.gan_loss
        with tf.GradientTape(persistent=True) as tape:
            if self.enc is not None:
                z, code_t = self.train_noise(n), self.enc(x_t, training=True)
            else:
                z = code_t = None
            fake_t = self.st(x_s, z, training=True)
            fake_s = self.g_ts(x_t, training=True)
            rec_s = self.g_ts(fake_t, training=True)
            rec_t = self.st(fake_s, code_t, training=True)
            cycle = losses.cycle_loss(x_s, rec_s) + losses.cycle_loss(x_t, rec_t)  # Eq. 2
            g_total = self.cycle_weight * cycle
            if self.enc is not None:
                latent = tf.reduce_mean(tf.abs(z - tf.cast(self.enc(fake_t, training=True), tf.float32)))
                g_total += self.latent_weight * latent
            if self.identity_weight:
                identity = (losses.identity_loss(x_t, self.st(x_t, code_t, training=True))
                            + losses.identity_loss(x_s, self.g_ts(x_s, training=True)))
                g_total += self.identity_weight * identity
            if self.semantic_net is not None:
                semantic = self._semantic_loss(x_s, x_t, fake_t, fake_s)
                g_total += self.semantic_weight * semantic
            # One discriminator pass over [real; shown fakes; current fakes (for the generator's term)].
            d_t_out, shown_t = self._discriminate(self.d_t, self.pool_t, x_t, fake_t)
            d_s_out, shown_s = self._discriminate(self.d_s, self.pool_s, x_s, fake_s)
            g_st_adv = losses.generator_adversarial_loss(d_t_out[-n:], gan)  # Eq. 1, G^ST vs D^T
            g_ts_adv = losses.generator_adversarial_loss(d_s_out[-n:], gan)
            g_total += g_st_adv + g_ts_adv  # Eq. 3
            d_t_loss = losses.discriminator_loss(d_t_out[:n], d_t_out[n:n + shown_t], gan)
            d_s_loss = losses.discriminator_loss(d_s_out[:n], d_s_out[n:n + shown_s], gan)
            g_scaled = g_total / tf.cast(replicas, tf.float32)  # optimizer.apply sums over replicas
            d_scaled = (d_s_loss + d_t_loss) / tf.cast(replicas, tf.float32)
            if self._loss_scaling:
                scaled = {k: self.optimizers[k].scale_loss(d_scaled if k[0] == "d" else g_scaled)
                          for k in self.networks}
            else:
                scaled = {k: d_scaled if k[0] == "d" else g_scaled for k in self.networks}
        for names in (tuple(k for k in self.networks if k[0] != "d"), ("d_s", "d_t")):
            for k, grads in zip(names, self._gradients(tape, scaled, names)):
                self.optimizers[k].apply(grads, getattr(self, k).trainable_variables)
        del tape
        values = {"g_st_adv": g_st_adv, "g_ts_adv": g_ts_adv, "cycle": cycle, "g_total": g_total,
                  "d_s": d_s_loss, "d_t": d_t_loss}
        if self.identity_weight:
            values["identity"] = identity
        if self.semantic_net is not None:
            values["semantic"] = semantic
        if self.enc is not None:
            values["latent"] = latent
        for k, v in values.items():
            self.trackers[k].update_state(v)
        return {k: t.result() for k, t in self.trackers.items()}

    def train_noise(self, n):
        """G^ST's noise for a training step: stateless in (seed, replica, step), so a resumed run repeats it."""
        ctx = tf.distribute.get_replica_context()
        replica = ctx.replica_id_in_sync_group if ctx is not None else 0
        seed = tf.stack([tf.cast(self.seed * 1009 + replica + 500009, tf.int64), tf.cast(self.step, tf.int64)])
        return tf.random.stateless_normal(tf.concat([[n], self.noise_shape], 0), seed)

    def _semantic_loss(self, x_s, x_t, fake_t, fake_s):
        """CyCADA's semantic consistency (beyond the paper): the frozen source network f_S labels a translation
        as it labels the original, CE(f_S(G^ST(x_s)), argmax f_S(x_s)) + CE(f_S(G^TS(x_t)), argmax f_S(x_t)),
        batch means. Images go from the generators' [-1, 1] to f_S's input through ``preprocess``."""
        from daaa_tf.models import preprocess

        def logits(x):
            x255 = (tf.cast(x, tf.float32) + 1.0) * 127.5
            return tf.cast(self.semantic_net(preprocess(x255, self.semantic_arch), training=False)["logits"],
                           tf.float32)

        n = tf.shape(x_s)[0]
        originals = tf.stop_gradient(tf.argmax(logits(tf.concat([x_s, x_t], 0)), axis=-1))
        translated = logits(tf.concat([fake_t, fake_s], 0))
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(originals, translated)
        return tf.reduce_mean(ce[:n]) + tf.reduce_mean(ce[n:])

    @property
    def _loss_scaling(self):
        return any(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in self.optimizers.values())

    def _discriminate(self, disc, pool, real, fake):
        """D over [real; pool(fake) (stop-gradient); fake]; without a pool the fakes are shown once."""
        if pool is None:
            return disc(tf.concat([real, fake], 0), training=True), tf.shape(fake)[0]
        shown = pool(fake, step=self.step)
        return disc(tf.concat([real, shown, fake], 0), training=True), tf.shape(fake)[0]

    def translate(self, images_uint8, direction="st"):
        """uint8 [N, H, W, 3] -> uint8 translations by G^ST ("st", with each image's noise) or G^TS ("ts")."""
        x = to_float(images_uint8)
        return to_uint8(self.st(x) if direction == "st" else self.g_ts(x, training=False))


def build_cyclegan(config, strategy=None, semantic_net=None, semantic_arch="digit_cnn"):
    """Builds and compiles the CycleGAN of ``config`` (in ``strategy``'s scope when given).

    ``semantic_net``: the frozen source classifier, needed when ``config.semantic_weight`` > 0."""
    strategy = strategy or tf.distribute.get_strategy()
    c = config
    for name, value, low, high in (("--cycle_weight", c.cycle_weight, 0, 1000),
                                   ("--identity_weight", c.identity_weight, 0, 1000),
                                   ("--pool_size", c.pool_size, 0, 1000)):
        if not low <= value <= high:
            raise UserError(f"{name}: expected a value in [{low}, {high}], got {value}")
    noise = tuple(c.noise_shape) or None
    with strategy.scope():
        g_st = build_generator(c.image_size, c.gen_width, c.gen_blocks, c.upsample, name="g_st", noise_shape=noise)
        enc = build_encoder(c.image_size, noise, c.disc_width, name="enc") if noise else None
        g_ts = build_generator(c.image_size, c.gen_width, c.gen_blocks, c.upsample, name="g_ts")
        d_s = build_discriminator(c.image_size, c.disc_width, c.disc_layers, name="d_s")
        d_t = build_discriminator(c.image_size, c.disc_width, c.disc_layers, name="d_t")
        if semantic_net is not None and c.semantic_weight:
            clone = keras.models.clone_model(semantic_net)  # its variables live in this strategy's scope
            clone.set_weights(semantic_net.get_weights())
            semantic_net = clone
        model = CycleGAN(g_st, g_ts, d_s, d_t, c.cycle_weight, c.identity_weight, c.gan_loss, c.pool_size,
                         c.seed, semantic_net=semantic_net, semantic_weight=c.semantic_weight,
                         semantic_arch=semantic_arch, encoder=enc, latent_weight=c.latent_weight, name="cyclegan")
        model.lr_schedule = cyclegan_lr(c.lr, c.steps, c.lr_decay)  # a float, or a function of the step
        model.compile(make_optimizers(model.lr_schedule, c.beta1, model.networks))
    return model


def make_optimizers(lr=2e-4, beta1=0.5, networks=NETWORKS):
    """One Adam per network (CycleGAN: 2e-4, beta1 0.5; ``lr`` a float or a schedule of the step); loss-scaled
    under the mixed_float16 policy."""
    out = {}
    for k in networks:
        opt = keras.optimizers.Adam(lr, beta_1=beta1, name=f"adam_{k}")
        if keras.mixed_precision.dtype_policy().name == "mixed_float16":
            opt = keras.optimizers.LossScaleOptimizer(opt, name=f"loss_scale_{k}")
        out[k] = opt
    return out
