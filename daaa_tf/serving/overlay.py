"""Input images and attention overlays for ``export.predict`` (Fig. 5 style): read, pick maps, draw."""

import os

import numpy as np

from daaa_tf import MissingFileError, UserError


def read_image(path, image_size):
    """uint8 [H, W, 3] for the model and a list of notes (conversions made). One-line ValueError if unreadable.

    Grey or RGBA images are converted to RGB; other sizes are resized (bilinear) to ``image_size`` (H, W).
    """
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such image file")
    try:
        with Image.open(path) as img:
            img.load()
            mode, size = img.mode, img.size
            rgb = img.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise UserError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    notes = []
    if mode != "RGB":
        notes.append(f"converted from mode {mode} to RGB")
    h, w = image_size
    if size != (w, h):
        rgb = rgb.resize((w, h), Image.BILINEAR)
        notes.append(f"resized from {size[0]}x{size[1]} to {w}x{h}")
    return np.asarray(rgb, np.uint8), notes


def select_maps(maps, max_maps):
    """At most ``max_maps`` of the (ordered) attention maps, evenly spaced from the first to the last tap."""
    keys = sorted(maps)
    if max_maps and len(keys) > max_maps:
        idx = np.unique(np.linspace(0, len(keys) - 1, max_maps).round().astype(int))
        keys = [keys[i] for i in idx]
    return {k: maps[k] for k in keys}


def save_overlay(path, image, maps, title="", alpha=0.5):
    """Writes a PNG: the image, then each attention map [H_l, W_l] upsampled and overlaid on it (Fig. 5)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from daaa_tf.io import atomic_path

    n = 1 + len(maps)
    fig = Figure(figsize=(2.2 * n, 2.6))
    FigureCanvasAgg(fig)
    h, w = image.shape[:2]
    axes = fig.subplots(1, n, squeeze=False)[0]
    axes[0].imshow(image)
    axes[0].set_title(title or "input", fontsize=8)
    for ax, (key, a) in zip(axes[1:], maps.items()):
        ax.imshow(image)
        ax.imshow(a, cmap="jet", alpha=alpha, extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="bilinear")
        ax.set_title(key.split("_", 1)[-1], fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path
