"""Run fingerprints (docs/design.md, "Fingerprints"): what determines a stage's result, recorded in
``<stage dir>/fingerprint.json``, so that a rerun with other settings or other inputs is refused instead of
silently resuming the old run.

``fingerprint(cfg, inputs)`` is {"stage", "settings": {flag: value}, "inputs": {name: identity}}: the stage's
flags except those in ``NOT_RESULT`` (they change where things go or how they are logged, not the result), and
the identity of what it reads: sha256 of an upstream artifact, and for the data a stage reads directly the spec
and a digest of its files (``daaa_tf.data.identity``; the spec is a flag and so a setting too). A recorded
fingerprint without a data input (written before data identities were recorded) is no difference on that key.
``check(stage_dir, fp, overwrite)`` compares with the recorded one (a StageError naming the differing flags, or
"new" / "same" / "overwrite"); ``claim`` also moves a differing old run aside (with ``overwrite``) and records
``fp`` and flags.txt.
"""

import json
import os
import time

from daaa_tf import StageError, config, io, workers

FILE = "fingerprint.json"

# Flags that do not determine a stage's result: output/input paths (the inputs are identified by checksum
# instead), logging and evaluation-only settings, and --overwrite itself. One list for every stage.
NOT_RESULT = {
    "*": {"run_dir", "adapt_dir", "pairs_dir", "source_model", "overwrite", "eval_batch_size", "log_every",
          "profile_steps"},
    "cyclegan": {"cyclegan_steps_per_epoch", "translate_batch_size", "shard_size"},
}
# Settings a rerun may raise and still resume: the source net's and the CycleGAN's LRs are constant, the target
# net's restarts at every M_post sync, and every input stream is positioned by the step, so epoch (step) k of a
# longer run is that of the shorter one. A CycleGAN trained further translates the pairs again. Not while the
# setting named in LENGTH_FREE_LR is off the value that keeps the LR a function of the step alone: a decaying
# CycleGAN LR depends on --cyclegan_steps (--cyclegan_lr_decay), an annealing without restarts on --epochs.
EXTENDABLE = {"source": {"source_epochs"}, "cyclegan": {"cyclegan_steps"}, "adapt": {"epochs"}}
LENGTH_FREE_LR = {"cyclegan_steps": ("cyclegan_lr_decay", 1.0), "epochs": ("restart_lr", True)}

STAGE_NAMES = {"SourceConfig": "source", "CycleGANConfig": "cyclegan", "AdaptConfig": "adapt",
               "RevGradConfig": "revgrad"}


def stage_name(cfg):
    return STAGE_NAMES.get(type(cfg).__name__, type(cfg).__name__)


def _plain(value):
    return json.loads(json.dumps(value, default=list))


def settings(cfg):
    """{flag: value} of the flags of ``cfg`` that determine the stage's result."""
    skip = NOT_RESULT["*"] | NOT_RESULT.get(stage_name(cfg), set())
    return {name: _plain(getattr(cfg, f.name)) for name, f in config.flag_fields(type(cfg)) if name not in skip}


def file_identity(path):
    """sha256 of a file, or "missing"."""
    return f"sha256:{io.sha256_file(path)}" if io.is_file(path) else "missing"


# The data a stage reads directly (the adaptation stage's source data and target train come from the pairs)
DATA_INPUTS = {"source": ("source", "target"), "cyclegan": ("source", "target"), "adapt": ("target",),
               "revgrad": ("source", "target")}


def data_inputs(cfg):
    """{"<role>_data": data_identity} of the domains the stage reads itself (see ``DATA_INPUTS``)."""
    from daaa_tf.data.identity import data_identity

    return {f"{role}_data": data_identity(getattr(cfg, role), role) for role in DATA_INPUTS.get(stage_name(cfg), ())}


def stage_inputs(cfg):
    """{input name: identity} of the upstream artifacts and the data a stage reads."""
    name = stage_name(cfg)
    if name == "adapt":
        out = {"source_model": file_identity(cfg.source_model),
               "pairs_manifest": file_identity(os.path.join(cfg.pairs_dir, "manifest.json"))}
    elif name == "revgrad" or (name == "cyclegan" and cfg.semantic_weight):
        out = {"source_model": file_identity(cfg.source_model)}
    else:
        out = {}
    return {**out, **data_inputs(cfg)}


def fingerprint(cfg, inputs=None):
    """The fingerprint of a stage config and its inputs (default: ``stage_inputs(cfg)``)."""
    return {"stage": stage_name(cfg), "settings": settings(cfg),
            "inputs": _plain(stage_inputs(cfg) if inputs is None else inputs)}


def _shown(v):
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def added_at_default(old, new):
    """Settings ``new`` records and ``old`` lacks, at their default: the project added them after ``old`` was
    recorded, and their default is what that run did, so they are no difference."""
    cls = next((c for c in config.STAGES if STAGE_NAMES.get(c.__name__) == new.get("stage")), None)
    defaults = {name: _plain(f.default) for name, f in config.flag_fields(cls)} if cls else {}
    o = old.get("settings", {})
    return {k for k, v in new.get("settings", {}).items() if k not in o and k in defaults and v == defaults[k]}


def _length_free(settings_, name):
    """Whether the LR under ``settings_`` does not depend on extendable setting ``name`` (``LENGTH_FREE_LR``)."""
    flag, value = LENGTH_FREE_LR.get(name, (None, None))
    return flag is None or settings_.get(flag, value) == value


def differences(old, new):
    """Human-readable differences ('--beta: 1.0 -> 0.0', 'input source_model changed'), [] when none; a raised
    extendable setting, and a setting added since ``old`` was recorded and at its default, is no difference."""
    out = []
    grow = EXTENDABLE.get(new.get("stage"), set())
    o, n = old.get("settings", {}), new.get("settings", {})
    added = added_at_default(old, new)
    for k in sorted(set(o) | set(n)):
        if o.get(k) == n.get(k) or k in added:
            continue
        if k in grow and isinstance(o.get(k), int) and isinstance(n.get(k), int) and n[k] > o[k] and _length_free(n, k):
            continue
        out.append(f"--{k}: {_shown(o[k]) if k in o else '(unset)'} -> {_shown(n[k]) if k in n else '(unset)'}")
    oi, ni = old.get("inputs", {}), new.get("inputs", {})
    for k in sorted(set(oi) | set(ni)):
        if oi.get(k) == ni.get(k) or (k.endswith("_data") and k not in oi):  # not recorded before: no difference
            continue
        if k.endswith("_data") and isinstance(ni.get(k), dict) and isinstance(oi.get(k), dict):
            if oi[k].get("spec") != ni[k].get("spec"):
                continue  # another spec: the flag's difference says so
            out.append(f"input {k.replace('_', ' ')} changed ({ni[k].get('spec')})")
        else:
            out.append(f"input {k} changed ({str(oi.get(k))[:15]} -> {str(ni.get(k))[:15]})")
    return out


def same(old, new):
    """Whether recorded fingerprint ``old`` equals ``new`` exactly, apart from data inputs ``old`` lacks (a run
    recorded before data identities were) and settings added since at their default (``added_at_default``)."""
    if old is None:
        return False
    inputs = {k: v for k, v in new.get("inputs", {}).items() if k in old.get("inputs", {}) or not k.endswith("_data")}
    added = added_at_default(old, new)
    settings_ = {k: v for k, v in new.get("settings", {}).items() if k not in added}
    return old == {**new, "inputs": inputs, "settings": settings_}


def recorded(stage_dir):
    return io.read_json(os.path.join(stage_dir, FILE))


def check(stage_dir, fp, overwrite=False):
    """Compares ``fp`` with the fingerprint recorded in ``stage_dir``: "new" (none recorded), "same", or
    "overwrite" (differs, and ``overwrite``); raises StageError (one line naming what differs) otherwise."""
    old = recorded(stage_dir)
    if old is None:
        return "new"
    diff = differences(old, fp)
    if not diff:
        return "same"
    if overwrite:
        return "overwrite"
    article = "an" if fp["stage"][0] in "aeiou" else "a"
    raise StageError(f"{stage_dir} holds {article} {fp['stage']} run with other settings or inputs: "
                     f"{', '.join(diff)}; pass --overwrite to start this stage afresh (the old run is moved to "
                     f"{os.path.basename(stage_dir.rstrip('/'))}.old-<timestamp>), or use another --run_dir")


def move_aside(stage_dir):
    """Renames ``stage_dir`` to <stage_dir>.old-<UTC timestamp>[-n] (nothing is deleted); returns the new name."""
    old = f"{stage_dir.rstrip('/')}.old-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    n, name = 1, old
    while io.gfile.exists(name):
        n += 1
        name = f"{old}-{n}"
    io.move(stage_dir, name)
    print(f"{stage_dir}: the previous run (other settings or inputs) was moved to {name}")
    return name


def flag_lines(cfg):
    """``config.flag_lines(cfg)`` without --overwrite: replaying a stage's flags.txt never moves a run aside."""
    return [line for line in config.flag_lines(cfg) if line not in ("--overwrite", "--nooverwrite")]


def claim(stage_dir, cfg, overwrite=None, inputs=None, strategy=None):
    """The start of a stage: ``check``; with a differing fingerprint and ``overwrite`` the old stage directory
    is moved to <stage_dir>.old-<UTC timestamp> (nothing is deleted); removes the temporary files a killed run
    left; then records the fingerprint (atomically) and flags.txt. Returns the fingerprint and what ``check`` found.

    Under a multi-worker ``strategy`` every worker checks, then (after all have) only the chief moves, removes and
    writes, and every worker waits for it (docs/design.md, "Multi-worker")."""
    fp = fingerprint(cfg, inputs)
    overwrite = getattr(cfg, "overwrite", False) if overwrite is None else overwrite
    state = check(stage_dir, fp, overwrite)
    if strategy is not None and workers.num_workers(strategy) > 1:
        workers.barrier(strategy)  # everyone has read the old state before the chief changes it
        if workers.is_chief(strategy):
            _record(stage_dir, cfg, fp, state)
        workers.barrier(strategy)
        return fp, state
    _record(stage_dir, cfg, fp, state)
    return fp, state


def _record(stage_dir, cfg, fp, state):
    if state == "overwrite":
        move_aside(stage_dir)
    io.gfile.makedirs(stage_dir)
    io.remove_stale_temporaries(stage_dir)  # what a killed run of this stage left
    io.write_json(os.path.join(stage_dir, FILE), fp)
    io.write_text(os.path.join(stage_dir, "flags.txt"), "\n".join(flag_lines(cfg)) + "\n")


__all__ = ["NOT_RESULT", "EXTENDABLE", "DATA_INPUTS", "fingerprint", "settings", "stage_inputs", "data_inputs",
           "differences", "same", "check", "claim", "move_aside"]
