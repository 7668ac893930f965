"""Small file helpers: atomic writes (write to a temporary name, rename when complete), JSON and checksums.

Every path goes through ``tf.io.gfile``, so a run directory, data or export may live on any filesystem TensorFlow
supports (local, ``gs://``, ``s3://`` with tensorflow-io, ``ram://``); see docs/design.md, "Filesystems".
"""

import contextlib
import hashlib
import json
import os
import posixpath
import re
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
    tmp = posixpath.join(parent, f".{base}.{uuid.uuid4().hex[:8]}.tmp{suffix}")  # as tempfile.mkstemp named it
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


# What an interrupted run leaves: atomic_path's ".NAME.<8 chars>.tmp[.keras|.h5]", save_flags' "NAME.tmp" is
# not matched (it is rewritten in place), the export's staging folder ".export.<8 chars>".
_STALE = re.compile(r"^(\..+\.[A-Za-z0-9_]{8}\.tmp(\.keras|\.h5)?|\.export\.[A-Za-z0-9_]{8})$")


def remove_stale_temporaries(directory, recursive=True, log=print):
    """Deletes the temporary files and folders an interrupted (killed) run left in ``directory`` (see
    ``atomic_path``); logs how many in one line. Returns the count. Call it only where no other process of the
    same stage can be writing (the start of a stage)."""
    if not _gf().isdir(directory):
        return 0
    removed = 0
    for root, dirs, files in _gf().walk(directory):
        for name in [*files, *dirs]:
            if _STALE.match(name.rstrip("/")):
                remove_tree(posixpath.join(root, name))
                removed += 1
        dirs[:] = [d for d in dirs if not _STALE.match(d.rstrip("/"))] if recursive else []
    if removed:
        log(f"{directory}: removed {removed} stale temporary file(s) left by an interrupted run")
    return removed


def write_json(path, obj):
    """Writes ``obj`` as indented JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def read_json(path, default=None):
    """The JSON in ``path``, or ``default`` when there is no such file. A file that is not JSON (cut short,
    edited, binary) is a UserError naming it."""
    from daaa_tf import UserError

    if not _gf().exists(path):
        return default
    try:
        return json.loads(read_text(path, "rb").decode("utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); it was cut short or "
                        "edited: restore it, or delete it and rerun the stage that writes it") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid JSON (not UTF-8 text); restore it, or delete it and rerun the stage "
                        "that writes it") from None


def read_text_lines(path):
    """The lines of a UTF-8 text file (a byte-order mark and CRLF line ends allowed), without their line ends.
    Bytes that are not UTF-8 (a latin-1 file, say) are a UserError naming the file and line."""
    from daaa_tf import UserError

    raw = read_text(path, "rb")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def sha256_file(path):
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with _gf().GFile(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
