"""A larger, longer CycleGAN trained on an accelerator without TensorFlow (bench only; never run as a test).

The GPU machine lent to some of this project's sessions has JAX but no TensorFlow (and TensorFlow is too large to
carry there). This script trains the project's own CycleGAN networks there, built by ``daaa_tf.models.gan_nets``
(the same layers, names and weight order), through Keras 3's JAX backend, with the losses of
``daaa_tf.method.losses`` (LSGAN, L1 cycle, CycleGAN's pool of 50 past fakes, one Adam per side) written in
jax.numpy. The weights come back and are loaded into the TF generators, which translate the pair shards here;
``bench/em_trace.py`` then adapts on them as on the shipped CycleGAN's. Three modes:

    # here (TF): both training sets exactly as the CycleGAN stage sees them, packed (about 35 MB)
    python bench/cyclegan_jax.py --mode=pack --source=mnist:MNIST_DIR --target=mnist_m:DIR --data=.gpu/data
    # on the device (JAX): train for --seconds (the last half of the steps decays the LR linearly to 0)
    KERAS_BACKEND=jax python bench/cyclegan_jax.py --mode=train --data=.gpu/data --out=$OUT --gen_width=64 \\
        --gen_blocks=6 --batch_size=64 --seconds=440
    # here (TF): both training sets translated into RUN/pairs by those weights (parity-checked first)
    python bench/cyclegan_jax.py --mode=translate --weights=WEIGHTS_DIR --run_dir=RUN --source=... --target=...

``--noise_shape=h,w,c`` gives G^ST a noise input (N(0, 1), resized onto the image; ``gan_nets.build_generator``)
and trains a target encoder E beside the generators (``gan_nets.build_encoder``): the target cycle rebuilds x_t
as G^ST(G^TS(x_t), E(x_t)), and |z - E(G^ST(x_s, z))| (``--latent_weight``) makes G^ST use its noise, so it can
draw backgrounds that do not depend on the digit (docs/benchmark.md, section 1b). Translation then draws fresh
noise per batch (seeded by --seed). Every run reports how varied G^ST's outputs are (``diversity``).
"""

import glob
import importlib.util
import json
import lzma
import os
import sys
import time
import types

import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FLAGS = flags.FLAGS
PARITY_IMAGES = 8
PROBE_SEED = 1234
FILE_BYTES = 16_000_000  # the device returns files of at most 16 MiB


def _gan_nets():
    """daaa_tf.models.gan_nets without TensorFlow: its network builders use Keras alone (its TF helpers are
    not called here), so on a machine without TF the module is loaded with a stand-in ``tensorflow``."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        sys.modules["tensorflow"] = types.ModuleType("tensorflow")
    spec = importlib.util.spec_from_file_location("gan_nets", os.path.join(ROOT, "daaa_tf/models/gan_nets.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def noise_shape():
    """--noise_shape as (h, w, c), or None when G^ST takes no noise."""
    if not FLAGS.noise_shape:
        return None
    try:
        shape = tuple(int(v) for v in FLAGS.noise_shape.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise SystemExit(f"--noise_shape: expected h,w,c (positive integers), got {FLAGS.noise_shape!r}")
    return shape


def _networks(gan_nets, encoder=True):
    import keras

    keras.config.set_dtype_policy(FLAGS.precision)
    size, w, b, noise = FLAGS.image_size, FLAGS.gen_width, FLAGS.gen_blocks, noise_shape()
    nets = {k: gan_nets.build_generator(size, w, b, "resize", name=k, noise_shape=noise if k == "g_st" else None)
            for k in ("g_st", "g_ts")}
    nets.update({k: gan_nets.build_discriminator(size, FLAGS.disc_width, FLAGS.disc_layers, name=k)
                 for k in ("d_s", "d_t")})
    if noise and encoder:
        nets["enc"] = gan_nets.build_encoder(size, noise, FLAGS.disc_width, name="enc")
    for k, net in nets.items():
        assert not net.non_trainable_variables, f"{k} has non-trainable state; the JAX step does not carry it"
    return nets


# ------------------------------------------------------------------------------------------- pack (TF)


def resize_matrix(size_in, size_out):
    """R with tf.image.resize(x, antialias=True)[i, j] = sum_ab R[i, a] x[a, b] R[j, b] (the stage's resize;
    the resize is separable and its weights sum to 1, so image a, whose row a is all ones, resizes to R[:, a])."""
    import tensorflow as tf

    rows = np.zeros((size_in, size_in, size_in, 1), np.float32)
    rows[np.arange(size_in), np.arange(size_in)] = 1.0
    out = tf.image.resize(rows, (size_out, size_out), antialias=True).numpy()[..., 0]  # [a, i, j]
    return np.ascontiguousarray(out[:, :, 0].T)


def resize(images, matrix):
    """uint8 [N, a, a(, C)] -> uint8 [N, s, s(, C)] by the separable matrix of ``resize_matrix``, rounded."""
    x = images.astype(np.float32)
    out = np.einsum("ia,na...->ni...", matrix, x)
    out = np.einsum("jb,nib...->nij...", matrix, out)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def pack():
    import tensorflow as tf  # noqa: F401

    from daaa_tf.data import load_domain
    from daaa_tf.data.pipelines import conform_domain

    os.makedirs(FLAGS.data, exist_ok=True)
    meta = {}
    for role, spec in (("source", FLAGS.source), ("target", FLAGS.target)):
        native = _array(conform_domain(load_domain(spec, "train", 28, role=role), 28, "resize", f"--{role}"))
        staged = _array(conform_domain(load_domain(spec, "train", FLAGS.image_size, role=role), FLAGS.image_size,
                                       "resize", f"--{role}"))
        matrix = resize_matrix(native.shape[1], FLAGS.image_size)
        gray = bool((native[..., :1] == native).all())
        stored = native[..., 0] if gray else native
        mine = resize(stored, matrix)
        mine = np.repeat(mine[..., None], 3, -1) if gray else mine
        differ = int((mine != staged).sum())
        print(f"{role}: {len(native)} images, {'gray' if gray else 'colour'}; the packed 28x28 images resized here "
              f"differ from the stage's {FLAGS.image_size}x{FLAGS.image_size} in {differ} of {mine.size} values "
              f"(max {int(np.abs(mine.astype(int) - staged).max())})", flush=True)
        if differ > 1e-4 * mine.size:
            raise SystemExit(f"{role}: the packed images do not reproduce the stage's input")
        with open(os.path.join(FLAGS.data, f"{role}.xz"), "wb") as f:
            f.write(lzma.compress(np.ascontiguousarray(stored).tobytes(), preset=6))
        meta[role] = {"spec": spec, "shape": list(stored.shape), "gray": gray, "resize": matrix.tolist()}
    with open(os.path.join(FLAGS.data, "meta.json"), "w") as f:
        json.dump(meta, f)


def _array(domain):
    return np.concatenate([x for x, _ in domain.dataset().batch(4096).as_numpy_iterator()])


def unpack(data_dir, role, limit=0):
    with open(os.path.join(data_dir, "meta.json")) as f:
        meta = json.load(f)[role]
    with open(os.path.join(data_dir, f"{role}.xz"), "rb") as f:
        stored = np.frombuffer(lzma.decompress(f.read()), np.uint8).reshape(meta["shape"])
    stored = stored[:limit] if limit else stored
    images = resize(stored, np.asarray(meta["resize"], np.float32))
    return np.repeat(images[..., None], 3, -1) if meta["gray"] else images


# ------------------------------------------------------------------------------------------ train (JAX)


def train():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax
    import jax.numpy as jnp
    import keras
    import optax

    if keras.backend.backend() != "jax":
        raise SystemExit("--mode=train needs KERAS_BACKEND=jax")
    print("devices:", jax.devices(), flush=True)
    t_start = time.perf_counter()
    src = jnp.asarray(unpack(FLAGS.data, "source", FLAGS.limit))
    tgt = jnp.asarray(unpack(FLAGS.data, "target", FLAGS.limit))
    keras.utils.set_random_seed(FLAGS.seed)
    nets = _networks(_gan_nets())
    params = {k: [v.value for v in net.trainable_variables] for k, net in nets.items()}
    lam, n_batch, size, noise = FLAGS.cycle_weight, FLAGS.batch_size, FLAGS.pool_size, noise_shape()

    def run(k, p, x):
        return nets[k].stateless_call(p[k], [], x, training=True)[0].astype(jnp.float32)

    def g_loss(gp, dp, xs, xt, key):
        """Eqs. 1-3. With noise, G^ST(x_s, z) for z ~ N(0, 1); the target cycle feeds G^ST the code E(x_t) of the
        target it must rebuild, and |z - E(G^ST(x_s, z))| (weight --latent_weight) makes G^ST use its noise."""
        if noise:
            z = jax.random.normal(key, (n_batch, *noise))
            fake_t, fake_s = run("g_st", gp, [xs, z]), run("g_ts", gp, xt)
            rebuilt_t = run("g_st", gp, [fake_s, run("enc", gp, xt)])
            latent = jnp.mean(jnp.abs(z - run("enc", gp, fake_t)))
        else:
            fake_t, fake_s = run("g_st", gp, xs), run("g_ts", gp, xt)
            rebuilt_t, latent = run("g_st", gp, fake_s), jnp.float32(0.0)
        cycle = jnp.mean(jnp.abs(xs - run("g_ts", gp, fake_t))) + jnp.mean(jnp.abs(xt - rebuilt_t))
        adv_st = jnp.mean(jnp.square(run("d_t", dp, fake_t) - 1.0))  # Eq. 1, G^ST against D^T (LSGAN)
        adv_ts = jnp.mean(jnp.square(run("d_s", dp, fake_s) - 1.0))
        total = adv_st + adv_ts + lam * cycle + FLAGS.latent_weight * latent
        return total, (fake_t, fake_s, jnp.stack([adv_st, adv_ts, cycle, latent]))

    def d_loss(dp, xs, xt, shown_s, shown_t):
        def one(k, real, fake):
            return 0.5 * (jnp.mean(jnp.square(run(k, dp, real) - 1.0)) + jnp.mean(jnp.square(run(k, dp, fake))))
        ls, lt = one("d_s", xs, shown_s), one("d_t", xt, shown_t)
        return ls + lt, jnp.stack([ls, lt])

    def pool(buffer, count, fakes, key):
        """ImagePool of gan_nets in jax.numpy: fill, then swap each fake with a stored one with probability 1/2."""
        coin = jax.random.uniform(key, (n_batch,))
        slot = jax.random.randint(jax.random.fold_in(key, 1), (n_batch,), 0, size)
        position = count + jnp.arange(n_batch)
        fill = position < size
        swap = jnp.logical_and(~fill, coin < 0.5)
        index = jnp.where(fill, position, slot)
        shown = jnp.where(swap[:, None, None, None], buffer[jnp.minimum(index, size - 1)], fakes)
        target = jnp.where(fill | swap, index, size)
        padded = jnp.concatenate([buffer, jnp.zeros_like(buffer[:1])]).at[target].set(fakes)
        return jax.lax.stop_gradient(shown), padded[:size], jnp.minimum(count + n_batch, size)

    def schedule_for(total):
        half = total // 2
        return lambda step: FLAGS.lr * jnp.clip(1.0 - (step - half) / jnp.maximum(total - half, 1), 0.0, 1.0)

    def make_opt(total):  # one Adam per side, Keras' defaults but beta_1 (CycleGAN's 0.5); its count is the step
        return optax.adam(schedule_for(total), b1=0.5, b2=0.999, eps=1e-7)

    gp = {k: params[k] for k in params if k not in ("d_s", "d_t")}
    dp = {k: params[k] for k in ("d_s", "d_t")}
    empty_pool = jnp.zeros((size, *src.shape[1:]), jnp.float32)
    state = {"gp": gp, "dp": dp, "g_state": make_opt(1).init(gp), "d_state": make_opt(1).init(dp),
             "pool_s": empty_pool, "pool_t": empty_pool, "count_s": jnp.int32(0), "count_t": jnp.int32(0),
             "step": jnp.int32(0)}
    base_key = jax.random.PRNGKey(FLAGS.seed)

    @jax.jit
    def chunk(state, src, tgt, idx_s, idx_t, total):
        lr_at, g_opt, d_opt = schedule_for(total), make_opt(total), make_opt(total)

        def one_step(s, idx):
            xs = src[idx[0]].astype(jnp.float32) / 127.5 - 1.0
            xt = tgt[idx[1]].astype(jnp.float32) / 127.5 - 1.0
            key = jax.random.fold_in(base_key, s["step"])
            (g_total, (fake_t, fake_s, g_parts)), g_grad = jax.value_and_grad(g_loss, has_aux=True)(
                s["gp"], s["dp"], xs, xt, jax.random.fold_in(key, 4))
            shown_t, pool_t, count_t = pool(s["pool_t"], s["count_t"], fake_t, jax.random.fold_in(key, 2))
            shown_s, pool_s, count_s = pool(s["pool_s"], s["count_s"], fake_s, jax.random.fold_in(key, 3))
            (_, d_parts), d_grad = jax.value_and_grad(d_loss, has_aux=True)(s["dp"], xs, xt, shown_s, shown_t)
            lr = lr_at(s["step"])
            g_up, g_state = g_opt.update(g_grad, s["g_state"], s["gp"])
            d_up, d_state = d_opt.update(d_grad, s["d_state"], s["dp"])
            new = {"gp": optax.apply_updates(s["gp"], g_up), "dp": optax.apply_updates(s["dp"], d_up),
                   "g_state": g_state, "d_state": d_state, "pool_s": pool_s, "pool_t": pool_t,
                   "count_s": count_s, "count_t": count_t, "step": s["step"] + 1}
            return new, jnp.concatenate([g_parts, d_parts, jnp.stack([g_total, lr])])

        state, logs = jax.lax.scan(one_step, state, (idx_s, idx_t))
        return state, jnp.mean(logs, 0)

    rng = np.random.default_rng(FLAGS.seed)
    orders = {"s": [], "t": []}

    def indices(name, n):
        rows = []
        for _ in range(FLAGS.chunk):
            if len(orders[name]) < n_batch:  # reshuffled every pass, as training_pairs does
                orders[name] = list(orders[name]) + list(rng.permutation(n))
            rows.append(orders[name][:n_batch])
            orders[name] = orders[name][n_batch:]
        return jnp.asarray(np.asarray(rows, np.int32))

    history, total, t0, step = [], FLAGS.steps, None, 0
    names = ["g_st_adv", "g_ts_adv", "cycle", "latent", "d_s", "d_t", "g_total", "lr"]
    while step < total:
        state, logs = chunk(state, src, tgt, indices("s", len(src)), indices("t", len(tgt)), jnp.int32(total))
        logs = np.asarray(logs)  # waits for the chunk
        step += FLAGS.chunk
        now = time.perf_counter()
        if t0 is None:  # the first chunk compiled: time from here, and set the number of steps by the budget
            t0, compiled_at = now, now - t_start
        else:  # re-estimated after every chunk (another job may share the device), never below the steps done
            rate = (step - FLAGS.chunk) / (now - t0)
            planned = total
            total = max(step, int(min(FLAGS.steps, step + rate * max(FLAGS.seconds - (now - t_start), 0))
                                  // FLAGS.chunk * FLAGS.chunk))
            if len(history) == 1 or abs(total - planned) > 0.05 * planned:
                print(f"{rate:.1f} steps/s: training {total} steps", flush=True)
        record = {"step": step, "seconds": now - t0, **{k: float(v) for k, v in zip(names, logs)}}
        history.append(record)
        print(json.dumps(record), flush=True)
    seconds = time.perf_counter() - t0
    for k in state["gp"]:
        for v, p in zip(nets[k].trainable_variables, state["gp"][k]):
            v.assign(p)
    os.makedirs(FLAGS.out, exist_ok=True)
    files = save_weights({k: nets[k] for k in ("g_st", "g_ts")}, FLAGS.out, FLAGS.save_dtype)
    probe = {"source": np.asarray(src[:PARITY_IMAGES]), "target": np.asarray(tgt[:PARITY_IMAGES])}
    parity = {k: np.round(np.asarray(nets[g](_inputs(g, probe[d]), training=False), np.float64), 5).tolist()
              for k, g, d in (("st", "g_st", "source"), ("ts", "g_ts", "target"))}
    spread = diversity(lambda x, rng: np.asarray(nets["g_st"](_inputs("g_st", x, rng), training=False)),
                       np.asarray(src[:4000]), np.asarray(tgt[:4000]))
    print(json.dumps(spread), flush=True)
    summary = {"flags": {f: getattr(FLAGS, f) for f in ("gen_width", "gen_blocks", "disc_width", "disc_layers",
                                                         "cycle_weight", "pool_size", "lr", "batch_size", "seed",
                                                         "precision", "limit", "noise_shape", "latent_weight",
                                                         "save_dtype")},
               "diversity": spread,
               "steps": step, "train_seconds": seconds, "compile_seconds": compiled_at,
               "images_per_s": (step - FLAGS.chunk) * n_batch / max(seconds, 1e-9), "files": files,
               "device": str(jax.devices()[0]),
               "history": history, "parity": parity}
    with open(os.path.join(FLAGS.out, "train.json"), "w") as f:
        json.dump(summary, f)
    print(f"trained {step} steps of {n_batch} in {seconds:.0f} s -> {FLAGS.out}", flush=True)


def _inputs(g, images, rng=None):
    """uint8 images -> what generator ``g`` takes: [-1, 1] floats, and for a noise-taking G^ST a noise draw too
    (from ``rng``; by default a fixed one, so the device and this machine feed the parity probe the same noise)."""
    x = np.asarray(images, np.float32) / 127.5 - 1.0
    shape = noise_shape()
    if g != "g_st" or shape is None:
        return x
    rng = rng if rng is not None else np.random.default_rng(PROBE_SEED)
    return [x, rng.standard_normal((len(x), *shape)).astype(np.float32)]


def diversity(translate, source, target, n=2000, seed=0):
    """Mean |a - b| (0-255) over n random pairs: of G^ST(x_s) (translate: uint8 -> [-1, 1]), of the real x_t, and
    between two noise draws for the same x_s (0 without noise): how varied the synthetic targets are."""
    rng = np.random.default_rng(seed)
    images = np.asarray(source[:n])

    def draw():
        out = np.concatenate([translate(images[i:i + 500], rng) for i in range(0, len(images), 500)])
        return (np.clip(out, -1, 1) + 1.0) * 127.5

    first, second = draw(), draw()
    i, j = rng.integers(0, len(first), (2, n))
    k, m = rng.integers(0, len(target), (2, n))
    mean_abs = lambda a, b: float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())
    return {"g_st_random_pairs": mean_abs(first[i], first[j]), "x_t_random_pairs": mean_abs(target[k], target[m]),
            "g_st_same_source_two_noises": mean_abs(first, second), "images": len(first)}


def save_weights(gens, out, dtype="float32"):
    """Each generator's weights (``dtype``, Keras order) in files of at most FILE_BYTES: {name}.{i}.npz."""
    files = []
    for name, net in gens.items():
        part, size, index = {}, 0, 0
        weights = [w.astype(dtype) for w in net.get_weights()]
        for i, w in enumerate(weights):
            if part and size + w.nbytes > FILE_BYTES:
                files.append(_write(out, name, index, part))
                part, size, index = {}, 0, index + 1
            part[f"w{i:03d}"], size = w, size + w.nbytes
        files.append(_write(out, name, index, part))
    return files


def load_weights(net, weights_dir):
    """Sets ``net``'s weights from the files ``save_weights`` wrote for ``net.name``."""
    parts = [np.load(p) for p in sorted(glob.glob(os.path.join(weights_dir, f"{net.name}.*.npz")))]
    weights = {key: part[key] for part in parts for key in part.files}
    if len(weights) != len(net.weights):
        raise SystemExit(f"{weights_dir}: {len(weights)} arrays for {net.name}, which has {len(net.weights)}")
    net.set_weights([weights[f"w{i:03d}"].astype(np.float32) for i in range(len(weights))])


def _write(out, name, index, part):
    path = f"{name}.{index}.npz"
    np.savez(os.path.join(out, path), **part)
    return path


# ------------------------------------------------------------------------------------- translate (TF)


class _Translator:
    """What ``translate_domains`` needs of a CycleGAN: ``translate`` and ``step_count``."""

    def __init__(self, gens, steps, seed=0):
        import tensorflow as tf

        self.gens, self.steps, self.noise = gens, steps, tf.random.Generator.from_seed(seed)

    def step_count(self):
        return self.steps

    def translate(self, images_uint8, direction="st"):
        """Runs inside tf.function (translate_domains): a noise-taking G^ST gets a fresh N(0, 1) draw per batch."""
        import tensorflow as tf

        from daaa_tf.models.gan_nets import to_float, to_uint8

        x, shape = to_float(images_uint8), noise_shape()
        if direction == "st" and shape is not None:
            x = [x, self.noise.normal(tf.concat([tf.shape(x)[:1], shape], 0))]
        return to_uint8(self.gens["g_" + direction](x, training=False))


def translate():
    from daaa_tf.data import load_domain
    from daaa_tf.data.pipelines import conform_domain
    from daaa_tf.models import gan_nets
    from daaa_tf.stages.cyclegan import translate_domains

    with open(os.path.join(FLAGS.weights, "train.json")) as f:
        summary = json.load(f)
    for name in ("gen_width", "gen_blocks", "noise_shape"):
        FLAGS[name].value = summary["flags"].get(name, FLAGS[name].default)
    nets = _networks(gan_nets, encoder=False)
    for k in ("g_st", "g_ts"):
        load_weights(nets[k], FLAGS.weights)
    domains = [conform_domain(load_domain(spec, "train", FLAGS.image_size, role=role), FLAGS.image_size, "resize",
                              f"--{role}") for spec, role in ((FLAGS.source, "source"), (FLAGS.target, "target"))]
    for (k, g), domain in zip((("st", "g_st"), ("ts", "g_ts")), domains):
        images = np.stack([x for x, _ in domain.dataset().take(PARITY_IMAGES).as_numpy_iterator()])
        here = nets[g](_inputs(g, images), training=False).numpy()
        gap = float(np.abs(here - np.asarray(summary["parity"][k])).max())
        print(f"parity {g}: max |TF - JAX| = {gap:.4f} on {PARITY_IMAGES} images", flush=True)
        if gap > 0.1:
            raise SystemExit(f"{g}: the weights do not reproduce the device's outputs (max diff {gap})")
    print(json.dumps(diversity(lambda x, rng: nets["g_st"](_inputs("g_st", x, rng), training=False).numpy(),
                               *[np.stack([x for x, _ in d.dataset().take(4000).as_numpy_iterator()])
                                 for d in domains])), flush=True)
    translator = _Translator(nets, summary["steps"], FLAGS.seed)
    result = translate_domains(translator, *domains, os.path.join(FLAGS.run_dir, "pairs"),
                               fingerprint={"source": FLAGS.source, "target": FLAGS.target,
                                            "image_size": FLAGS.image_size, "run": "bench/cyclegan_jax.py"})
    print(json.dumps(result), flush=True)


def _define_flags():
    flags.DEFINE_enum("mode", None, ["pack", "train", "translate"], "What to do (see the module docstring).")
    flags.DEFINE_string("source", "mnist:data/mnist", "Source domain spec (pack, translate).")
    flags.DEFINE_string("target", "mnist_m:data/mnist_m", "Target domain spec (pack, translate).")
    flags.DEFINE_string("data", ".gpu/data", "The packed training sets (pack writes, train reads).")
    flags.DEFINE_string("out", "", "train: where the weights and train.json go.")
    flags.DEFINE_string("weights", "", "translate: the folder train wrote.")
    flags.DEFINE_string("run_dir", "", "translate: the run directory whose pairs/ is written.")
    flags.DEFINE_integer("image_size", 32, "Image side.")
    flags.DEFINE_integer("gen_width", 64, "Generator width k.")
    flags.DEFINE_integer("gen_blocks", 6, "Generator residual blocks.")
    flags.DEFINE_integer("disc_width", 64, "Discriminator width.")
    flags.DEFINE_integer("disc_layers", 2, "Discriminator stride-2 layers.")
    flags.DEFINE_float("cycle_weight", 10.0, "lambda of Eq. 3.")
    flags.DEFINE_string("noise_shape", "", "h,w,c: G^ST also takes N(0, 1) noise of this shape, and an encoder of "
                        "targets is trained beside it (gan_nets.build_encoder); empty: no noise (CycleGAN).")
    flags.DEFINE_float("latent_weight", 1.0, "Weight of |z - E(G^ST(x_s, z))| (with --noise_shape).")
    flags.DEFINE_enum("save_dtype", "float32", ["float32", "float16"], "train: the dtype of the saved weights "
                      "(float16 halves the files; the device returns at most 64 MiB).")
    flags.DEFINE_integer("pool_size", 50, "Past fakes shown to each discriminator.")
    flags.DEFINE_float("lr", 2e-4, "Adam learning rate (constant for the first half of the steps, then linear to 0).")
    flags.DEFINE_integer("batch_size", 64, "Images per domain per step.")
    flags.DEFINE_integer("steps", 100000, "At most this many steps.")
    flags.DEFINE_float("seconds", 400.0, "Training ends this many seconds after the start (data and compilation "
                       "included): the rate of the first chunks sets the number of steps.")
    flags.DEFINE_integer("chunk", 200, "Steps per compiled call.")
    flags.DEFINE_integer("limit", 0, "Use only the first N images of each domain (a smoke test).")
    flags.DEFINE_integer("seed", 0, "Seed of the weights, the data order and the pools.")
    flags.DEFINE_string("precision", "mixed_bfloat16", "Keras dtype policy of the networks (train and translate).")


def main(argv):
    del argv
    {"pack": pack, "train": train, "translate": translate}[FLAGS.mode]()


if __name__ == "__main__":
    _define_flags()
    flags.mark_flag_as_required("mode")
    app.run(main)
