"""The report's PNG plots (matplotlib, Agg backend): target accuracy per epoch (Fig. 4 right), the L_AT trend with
and without the penalty (Fig. 4 left), and attention maps before/after adaptation (Fig. 5).

Each ``plot_*`` returns ``(path or None, caption)``: None with the reason when the runs do not hold what it needs.
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from daaa_tf import io  # noqa: E402
from daaa_tf.experiments import full_method  # noqa: E402

ORDER = ("S", "RevGrad", "Tf", "S+Tf", "S+Tf+AT", "full-noAT", "full", "EM-A", "EM-B", "EM-C", "AT-l1", "AT-mmd",
         "AT-jmmd")


def _save(fig, path):
    import io as pyio

    buffer = pyio.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    io.write_text(path, buffer.getvalue(), "wb")
    plt.close(fig)
    return path


def curves(runs, key, scale=1.0):
    """Per-epoch ``history[key]`` of each seed of a variant, cut to the shortest: [n_seeds, epochs] or None."""
    hs = [r.metrics.get("history", {}).get(key) for r in runs]
    hs = [np.asarray(h, np.float64) for h in hs if h]
    if not hs:
        return None
    length = min(len(h) for h in hs)
    return np.stack([h[:length] for h in hs]) * scale


def _band(ax, values, label, **kw):
    x = np.arange(1, values.shape[1] + 1)
    mean = values.mean(0)
    (line,) = ax.plot(x, mean, marker="o", markersize=3, label=f"{label} (n={len(values)})", **kw)
    if len(values) > 1:
        std = values.std(0, ddof=1)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)


def _ordered(runs):
    return [v for v in ORDER if v in runs] + sorted(set(runs) - set(ORDER) - {"source"})


def plot_accuracy(runs, path):
    """Target-test accuracy vs epoch per variant: mean over seeds, band = ± sample std."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = 0
    for v in _ordered(runs):
        values = curves(runs[v], "val_accuracy", 100.0)
        if values is not None:
            _band(ax, values, v)
            drawn += 1
    if not drawn:
        plt.close(fig)
        return None, "target accuracy per epoch: skipped (no run with history['val_accuracy'])"
    if "source" in runs:
        ax.axhline(100 * runs["source"][0].accuracy, color="grey", linestyle="--", label="source network")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel="target test accuracy (%)", title="Target test accuracy during adaptation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, path), "target test accuracy per epoch (mean over seeds, band ± std; cf. Fig. 4 right)"


def _full_label(runs):
    """The full run's short label, from the settings it ran with (``experiments.full_method``)."""
    return full_method(runs["full"][0].metrics.get("config") if runs.get("full") else None)[1]


def plot_at_trend(runs, path):
    """history['at'] (the epoch mean of L_AT per step) for the full method with and without the penalty."""
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = []
    for v, label in (("full", _full_label(runs).replace("\n", " ")),
                     ("full-noAT", "without L_AT (beta = 0, measured only)")):
        values = curves(runs.get(v, []), "at")
        if values is not None:
            _band(ax, values, f"{v}: {label}")
            drawn.append(v)
    if not drawn:
        plt.close(fig)
        return None, "L_AT trend: skipped (neither full nor full-noAT has history['at'])"
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel="L_AT (sum over pairs / B, epoch mean)",
           title="Attention discrepancy during training (cf. Fig. 4 left)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path), f"L_AT per epoch with and without the penalty ({', '.join(drawn)}; cf. Fig. 4 left)"


def target_test_images(spec, image_size, n):
    """The first example of each class of the target test split (then the next ones) up to ``n``: (images, labels)."""
    from daaa_tf.data import load_domain

    domain = load_domain(spec, "test", image_size, role="target")
    picked, rest, seen = [], [], set()
    for x, y in domain.dataset().take(min(domain.num_examples, 2000)).as_numpy_iterator():
        (rest if int(y) in seen else picked).append((x, int(y)))
        seen.add(int(y))
        if len(picked) >= n:
            break
    chosen = (picked + rest)[:n]
    if not chosen:
        raise ValueError(f"target test split of {spec!r} is empty")
    return np.stack([x for x, _ in chosen]), np.array([y for _, y in chosen])


def _maps(net, images, arch):
    """(predictions [N], [selected taps -> maps [N, H, W] in [0, 1]], tap labels); at most 3 taps, evenly spread."""
    import tensorflow as tf

    from daaa_tf.method.attention import attention_map
    from daaa_tf.models import preprocess

    out = net(preprocess(images, arch), training=False)
    taps = out["taps"]
    idx = sorted(set(np.linspace(0, len(taps) - 1, min(3, len(taps))).round().astype(int).tolist()))
    maps = []
    for i in idx:
        f = taps[i]
        a = tf.reshape(attention_map(f), tf.shape(f)[:3])[..., None]
        a = tf.image.resize(a, images.shape[1:3], method="bilinear")[..., 0].numpy()
        lo, hi = a.min(axis=(1, 2), keepdims=True), a.max(axis=(1, 2), keepdims=True)
        maps.append((a - lo) / (hi - lo + 1e-8))
    return np.argmax(out["logits"].numpy(), -1), maps, [f"tap {i + 1}/{len(taps)}" for i in idx]


def plot_attention(run_dir, runs, path, num_images, load_images):
    """Fig. 5: input | source net (= target net before adaptation) | adapted wo L_AT | adapted w L_AT."""
    from daaa_tf.models import load_classifier, model_spec

    src_model = os.path.join(run_dir, "source", "model.keras")
    if not io.gfile.exists(src_model):
        return None, "attention maps: skipped (no source/model.keras)"
    nets = [("source net = target\nnet before adaptation", src_model)]
    for v, label in (("full-noAT", "adapted\nwo L_AT"), ("full", f"adapted\n{_full_label(runs)}")):
        if runs.get(v) and io.gfile.exists(os.path.join(runs[v][0].path, "model.keras")):
            nets.append((label, os.path.join(runs[v][0].path, "model.keras")))
    if len(nets) < 2:
        return None, "attention maps: skipped (no adapted model.keras of full or full-noAT)"
    try:
        models = [(label, load_classifier(p)) for label, p in nets]
        src = runs.get("source", [None])[0]
        spec = (src.metrics.get("target") if src else None) or (
            runs.get("full", runs.get("full-noAT"))[0].metrics.get("config", {}).get("target", "demo"))
        model = model_spec(models[0][1])
        size = model["image_size"][0]
        images, labels = load_images(spec, size, num_images)
    except (FileNotFoundError, ValueError) as e:
        return None, f"attention maps: skipped ({e})"
    arch = model["arch"]
    results = [(label, *_maps(net, images, arch)) for label, net in models]
    n_taps = len(results[0][2])
    rows, cols = len(images), 1 + len(results) * n_taps
    fig, axes = plt.subplots(rows, cols, figsize=(1.25 * cols, 1.3 * rows + 0.8), squeeze=False)
    for r in range(rows):
        axes[r, 0].imshow(images[r])
        axes[r, 0].set_title(f"label {labels[r]}", fontsize=7)
        for g, (label, preds, maps, tap_names) in enumerate(results):
            for t, m in enumerate(maps):
                ax = axes[r, 1 + g * n_taps + t]
                ax.imshow(images[r].mean(-1), cmap="gray")
                ax.imshow(m[r], cmap="jet", alpha=0.5)
                title = f"{label}\n{tap_names[t]}\n" if r == 0 else ""
                ax.set_title(f"{title}pred {preds[r]}" if t == 0 else title.rstrip("\n"), fontsize=6)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Attention maps (Eq. 4) on {rows} target test images of {spec}", fontsize=9)
    names = ", ".join(label.replace("\n", " ") for label, *_ in results)
    return _save(fig, path), f"attention maps, input | {names} (cf. Fig. 5)"
