"""Small file helpers: atomic writes (write to a temporary name, rename when complete) and JSON."""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path``; renames it to ``path`` only if the block succeeds.

    Works for files and directories. A crash leaves ``path`` untouched (the old version, if any, survives).
    """
    parent = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(parent, exist_ok=True)
    base = os.path.basename(path)
    suffix = ".keras" if base.endswith(".keras") else (".h5" if base.endswith(".h5") else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{suffix}", dir=parent)
    os.close(fd)
    os.remove(tmp)
    try:
        yield tmp
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj):
    """Writes ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=float)
        f.write("\n")


def read_json(path, default=None):
    """The JSON in ``path``, or ``default`` when there is no such file. A file that is not JSON (cut short,
    edited, binary) is a UserError naming it."""
    from daaa_tf import UserError

    if not os.path.exists(path):
        return default
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); it was cut short or "
                        "edited: restore it, or delete it and rerun the stage that writes it") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid JSON (not UTF-8 text); restore it, or delete it and rerun the stage "
                        "that writes it") from None


def sha256_file(path):
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
