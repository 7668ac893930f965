"""Small file helpers: atomic writes (write to a temporary name, rename when complete) and JSON."""

import contextlib
import hashlib
import json
import os
import re
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


# What an interrupted run leaves: atomic_path's ".NAME.<8 chars>.tmp[.keras|.h5]", save_flags' "NAME.tmp" is
# not matched (it is rewritten in place), the export's staging folder ".export.<8 chars>".
_STALE = re.compile(r"^(\..+\.[A-Za-z0-9_]{8}\.tmp(\.keras|\.h5)?|\.export\.[A-Za-z0-9_]{8})$")


def remove_stale_temporaries(directory, recursive=True, log=print):
    """Deletes the temporary files and folders an interrupted (killed) run left in ``directory`` (see
    ``atomic_path``); logs how many in one line. Returns the count. Call it only where no other process of the
    same stage can be writing (the start of a stage)."""
    if not os.path.isdir(directory):
        return 0
    removed = 0
    for root, dirs, files in os.walk(directory):
        for name in [*files, *dirs]:
            if _STALE.match(name):
                path = os.path.join(root, name)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.remove(path)
                removed += 1
        dirs[:] = [d for d in dirs if not _STALE.match(d)] if recursive else []
    if removed:
        log(f"{directory}: removed {removed} stale temporary file(s) left by an interrupted run")
    return removed


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


def read_text_lines(path):
    """The lines of a UTF-8 text file (a byte-order mark and CRLF line ends allowed), without their line ends.
    Bytes that are not UTF-8 (a latin-1 file, say) are a UserError naming the file and line."""
    from daaa_tf import UserError

    with open(path, "rb") as f:
        raw = f.read()
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
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
