"""Small file helpers: atomic writes (write to a temporary name, rename when complete), JSON and checksums.

Every path goes through ``tf.io.gfile``, so a run directory, data or export may live on any filesystem TensorFlow
supports (local, ``gs://``, ``s3://`` with tensorflow-io, ``ram://``); see docs/design.md, "Filesystems".
"""

import contextlib
import hashlib
import json
import os
import posixpath
import uuid


def __getattr__(name):
    """``daaa_tf.io.gfile`` is ``tf.io.gfile``, imported on first use (reading a parity.json or predicting with a
    .tflite file does not import TensorFlow)."""
    if name == "gfile":
        import tensorflow as tf

        return tf.io.gfile
    raise AttributeError(name)


def _gf():
    import tensorflow as tf

    return tf.io.gfile


def is_remote(path):
    """True for a ``scheme://`` path (handled by a TensorFlow filesystem plugin, not the OS)."""
    return "://" in str(path)


def absolute(path):
    """``os.path.abspath`` for local paths; ``scheme://`` paths are returned unchanged."""
    return str(path) if is_remote(path) else os.path.abspath(path)


def dirname(path):
    return posixpath.dirname(str(path).rstrip("/")) if is_remote(path) else os.path.dirname(os.path.abspath(path))


def is_file(path):
    return bool(path) and _gf().exists(path) and not _gf().isdir(path)


def size(path):
    return _gf().stat(path).length


def remove_tree(path):
    """Removes a file or a directory tree if it exists."""
    import tensorflow as tf

    try:
        if _gf().isdir(path):
            _gf().rmtree(path)
        elif _gf().exists(path):
            _gf().remove(path)
    except tf.errors.NotFoundError:  # ram:// lists a directory whose files were all moved, then cannot find it
        pass


def copy_tree(src, dst, move=False):
    """Copies (``move``: renames) every file under directory ``src`` to the same place under ``dst``."""
    for root, _, files in _gf().walk(src):
        rel = root[len(src.rstrip("/")):].lstrip("/")
        target = posixpath.join(dst, rel) if rel else dst
        _gf().makedirs(target)
        for name in files:
            (_gf().rename if move else _gf().copy)(posixpath.join(root, name), posixpath.join(target, name),
                                                   overwrite=True)
    if move:
        remove_tree(src)


def move(src, dst):
    """Renames a file or directory (``gfile.rename``); a directory on a ``scheme://`` filesystem is moved file by
    file (some, like ram://, rename only the directory's own entry)."""
    if is_remote(src) and _gf().isdir(src):
        copy_tree(src, dst, move=True)
    else:
        _gf().rename(src, dst, overwrite=True)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path``; renames it to ``path`` only if the block succeeds.

    Works for files and directories, on every filesystem ``tf.io.gfile`` supports (the rename is
    ``gfile.rename(overwrite=True)``: atomic on local disks; on object stores a copy, so a reader can see a
    half-renamed directory there, never a half-written file under the final name of a file). A crash leaves
    ``path`` untouched (the old version, if any, survives).
    """
    path = str(path)
    parent = dirname(path) or "."
    _gf().makedirs(parent)
    base = posixpath.basename(path.rstrip("/"))
    suffix = ".keras" if base.endswith(".keras") else (".h5" if base.endswith(".h5") else "")
    tmp = posixpath.join(parent, f".{base}.{uuid.uuid4().hex[:12]}.tmp{suffix}")  # as tempfile.mkstemp named it
    try:
        yield tmp
        if _gf().isdir(path) and not os.path.islink(path):
            _gf().rmtree(path)
        move(tmp, path)
    finally:
        remove_tree(tmp)


def write_text(path, text, mode="w"):
    """Writes ``text`` (``mode`` "wb": bytes) to ``path`` atomically."""
    with atomic_path(path) as tmp, _gf().GFile(tmp, mode) as f:
        f.write(text)


def read_text(path, mode="r"):
    with _gf().GFile(path, mode) as f:
        return f.read()


def write_json(path, obj):
    """Writes ``obj`` as indented JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def read_json(path, default=None):
    if not _gf().exists(path):
        return default
    return json.loads(read_text(path))


def sha256_file(path):
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with _gf().GFile(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
