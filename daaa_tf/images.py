"""The one image-file reader (numpy and Pillow only, no TensorFlow at import): every path that reads an image
file (the folder readers of daaa_tf.data, the photos of the MNIST-M recipe, export.predict) decodes it with
``read_image`` into uint8 RGB [H, W, 3].

Pillow decodes; the conversion to 8-bit RGB is ours, because Pillow's ``convert("RGB")`` is wrong for some modes
(a 16-bit greyscale PNG, mode ``I;16``, comes out all white). Per mode:

- ``1``, ``L``, ``P`` (palette), ``RGB``, ``CMYK``, ``YCbCr``: Pillow's conversion to RGB (grey replicated,
  palette looked up, CMYK as Pillow converts it: R = (255 - C)(255 - K) / 255, ...).
- 16-bit greyscale (``I;16``, ``I;16B``, ``I;16L``, ``I``): scaled 0..65535 -> 0..255 (rounded; 32768 -> 128);
  ``I`` (32-bit integers) is read as 16-bit, values clipped to 0..65535. ``F`` (floats) is clipped to 0..255.
  16-bit RGB(A) files are opened by Pillow as 8-bit ``RGB``/``RGBA`` (the high byte of each sample).
- Alpha (``RGBA``, ``LA``, ``PA``, a palette or grey image with a transparent colour): composited on white, as
  a viewer shows the picture on a white page (a transparent-background product shot looks like Office-31's
  amazon images, not like a black square); the alpha itself is not kept.
- The EXIF orientation of a photo is applied (as a viewer shows it); a multi-frame file gives its first frame.

A file of more than ``max_pixels()`` pixels (default 89,478,485, Pillow's own limit, ~9459 x 9459) is refused
before it is decoded (a decompression bomb: a few kilobytes that inflate to gigabytes), with one line naming it;
``set_max_pixels`` changes the limit (also Pillow's, so its own check never fires first). Every failure is a
one-line ``daaa_tf.UserError`` (a ValueError) naming the file (``MissingFileError`` for a missing one), so the
callers skip and count the file and go on: the training folder readers skip it with the other unreadable
files, export.predict prints an ``error:`` line for it and exits 2 after classifying the others.
"""

import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from daaa_tf import MissingFileError, UserError

GREY16 = ("I;16", "I;16B", "I;16L", "I;16N", "I")
ALPHA = ("RGBA", "RGBa", "LA", "La", "PA")
ORIENTATION = 0x0112  # the EXIF tag
_LIMIT = [Image.MAX_IMAGE_PIXELS or 89_478_485]
# Our check refuses anything over the limit; Pillow's warning between 1x and 2x its limit would only repeat it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def max_pixels():
    """The largest image (width x height) ``read_image`` decodes."""
    return _LIMIT[0]


def set_max_pixels(n):
    """Sets the pixel limit of ``read_image`` (and Pillow's ``Image.MAX_IMAGE_PIXELS``); returns the old one."""
    old, _LIMIT[0] = _LIMIT[0], int(n)
    Image.MAX_IMAGE_PIXELS = int(n)
    return old


def has_alpha(img):
    return img.mode in ALPHA or (img.mode in ("P", "L", "RGB") and "transparency" in img.info)


def to_rgb(img):
    """A Pillow image of any mode -> uint8 RGB [H, W, 3] (see the module docstring for each mode)."""
    if img.mode in GREY16:
        v = np.clip(np.asarray(img, np.int64), 0, 65535)
        return np.repeat(((v * 255 + 32767) // 65535).astype(np.uint8)[..., None], 3, axis=-1)
    if img.mode == "F":
        v = np.clip(np.round(np.asarray(img, np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(v[..., None], 3, axis=-1)
    if has_alpha(img):
        rgba = np.asarray(img.convert("RGBA"), np.uint32)
        a = rgba[..., 3:]
        return ((rgba[..., :3] * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
    return np.asarray(img.convert("RGB"), np.uint8)


def _remote_bytes(path):
    """The bytes of a ``scheme://`` file as a file object (TensorFlow is imported only for such paths), or None."""
    import io

    import tensorflow as tf

    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        return None
    with tf.io.gfile.GFile(path, "rb") as f:
        return io.BytesIO(f.read())


def read_image(path, notes=None):
    """uint8 RGB [H, W, 3] of the image file ``path``; one-line ``UserError`` naming it if it cannot be used.

    ``notes``: a list that gets a short note for each conversion made (the file's mode, alpha, orientation).
    """
    path = os.fspath(path)
    source = _remote_bytes(path) if "://" in path else path  # gs://, ram://: through tf.io.gfile
    if source is None or (source is path and not os.path.isfile(path)):
        raise MissingFileError(f"{path}: no such image file")
    try:
        with Image.open(source) as img:
            w, h = img.size
            if w * h > max_pixels():
                raise UserError(f"{path}: refused, {w}x{h} = {w * h:,} pixels is over the limit of "
                                 f"{max_pixels():,} (a decompression bomb?); shrink the image first")
            img.load()
            mode, alpha = img.mode, has_alpha(img)
            rotate = img.getexif().get(ORIENTATION, 1) in range(2, 9)
            rgb = to_rgb(ImageOps.exif_transpose(img) if rotate else img)
    except Image.DecompressionBombError as e:
        raise UserError(f"{path}: refused, over the pixel limit of {max_pixels():,} (a decompression bomb?; "
                         f"{' '.join(str(e).split())}); shrink the image first") from None
    except (OSError, UnidentifiedImageError, SyntaxError, EOFError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a readable image ({type(e).__name__}: {' '.join(str(e).split())})") from None
    except ValueError as e:
        if str(e).startswith(path):
            raise
        raise UserError(f"{path}: not a readable image ({' '.join(str(e).split())})") from None
    if notes is not None:
        if mode != "RGB" or alpha:
            notes.append(f"converted from mode {mode} to RGB" + (" (alpha composited on white)" if alpha else ""))
        if rotate:
            notes.append("rotated as its EXIF orientation says")
    return rgb


def decode_tensor(path):
    """tf.data map function: a file path (string tensor) -> uint8 [H, W, 3] through ``read_image``.

    An unreadable file raises inside the pipeline (``ignore_errors()`` then leaves it out, as the readers do).
    """
    import tensorflow as tf

    def read(p):
        return read_image(p.decode() if isinstance(p, bytes) else str(p))

    img = tf.numpy_function(read, [path], tf.uint8, stateful=False)
    img.set_shape([None, None, 3])
    return img
