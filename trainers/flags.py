"""absl flags generated from the stage configs of ``daaa_tf.config`` (the one place defaults, help and bounds live).

An entry point calls ``define_flags(AdaptConfig, ...)`` for the stages it runs: those flags become its key flags
(``--helpshort`` lists them), ``from_flags(AdaptConfig)`` builds the config, and ``run_main(main)`` parses the
command line. The project's other flags are accepted and ignored, so one flagfile in configs/ serves every entry
point. A nested ``--flagfile=`` resolves against the working directory, else against the including file's folder.
Library code never reads FLAGS: entry points pass configs into daaa_tf.
"""

import logging as pylogging
import os
import sys

from absl import flags, logging

from daaa_tf import config

FLAGS = flags.FLAGS
flags.disclaim_key_flags()  # flags defined below belong to (and are key flags of) the entry point calling us

_DEFINE = {str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           bool: flags.DEFINE_boolean, tuple: flags.DEFINE_list}


def _define(name, f):
    m = f.metadata
    if m.get("choices"):
        flags.DEFINE_enum(name, f.default, m["choices"], m["help"])
        return
    kwargs = {k: m[b] for k, b in (("lower_bound", "lower"), ("upper_bound", "upper")) if m.get(b) is not None}
    default = ",".join(str(v) for v in f.default) if f.type is tuple else f.default
    _DEFINE[f.type](name, default, m["help"], **kwargs)
    if m.get("item") or m.get("check"):
        def check(value, f=f):
            try:
                message = config.problem(f, config.convert(f, value))
            except ValueError as e:
                message = str(e)
            if message:  # absl prefixes "flag --name=value: "
                raise flags.ValidationError(message.split(": ", 1)[-1])
            return True

        flags.register_validator(name, check)


def define_flags(*classes):
    """Defines (once) and declares as key flags of the caller the flags of ``classes``' fields, and the flags
    their ``fallback`` fields read. Returns the flag names."""
    names = []
    for cls in classes:
        for name, f in config.flag_fields(cls):
            names.append(name)
            fallback = f.metadata.get("fallback")
            if fallback:
                names.append(fallback)
    every = config.all_flags()
    for name in dict.fromkeys(names):
        if name not in FLAGS:
            _define(name, every.get(name) or config.shared(name))
        flags.declare_key_flag(name)
    for flag_names, check in _CROSS_CHECKS:
        if set(flag_names) <= set(names) and flag_names not in _registered:
            _registered.add(flag_names)
            flags.register_multi_flags_validator(list(flag_names), check)
    return names


def _batch_mix(values):
    """--batch_size, --proportions and --streams together give every active stream >= 1 sample per batch and
    keep the in-batch pairing (``daaa_tf.settings.stream_counts``, one replica; no TensorFlow import)."""
    from daaa_tf.settings import stream_counts

    try:
        f = config.all_flags()
        stream_counts(values["batch_size"], config.convert(f["proportions"], values["proportions"]),
                      config.convert(f["streams"], values["streams"]))
    except ValueError as e:
        raise flags.ValidationError(str(e)) from None
    return True


def _augment_options(values):
    """--augment_cutout and --augment_shift only act on the streams of --augment_streams, and a shift misaligns
    the attention pairs of L_AT (so it asks for --beta=0)."""
    problem = config.augment_problem(values["augment_cutout"], values["augment_streams"], values["augment_shift"],
                                     values["beta"])
    if problem:
        raise flags.ValidationError(problem)
    return True


# Cross-flag checks, run by the parser (so --only_check_args catches them): (flag names, check(values)).
_CROSS_CHECKS = [(("batch_size", "proportions", "streams"), _batch_mix),
                 (("augment_cutout", "augment_shift", "augment_streams", "beta"), _augment_options)]
_registered = set()


def values():
    """{flag name: value} of the project's flags defined in this process."""
    return {name: FLAGS[name].value for name in config.all_flags() if name in FLAGS}


def from_flags(cls, **overrides):
    """A checked ``cls`` from the parsed flags (ValueError naming the flag when a value is bad)."""
    return config.build(cls, values(), **overrides)


def save_flags(directory, *configs):
    """Writes the project flags of ``configs`` (paths absolute) to ``directory``/flags.txt; replay with
    --flagfile."""
    from daaa_tf.stages.fingerprint import flag_lines  # without --overwrite

    lines = list(dict.fromkeys(line for cfg in configs for line in flag_lines(cfg)))
    path = os.path.join(directory, "flags.txt")
    from daaa_tf import io

    io.write_text(path, "\n".join(lines) + "\n")
    return path


def _resolve(path, base):
    path = os.path.expanduser(path)
    if os.path.isabs(path) or base is None or os.path.exists(path):
        return path
    beside = os.path.join(base, path)
    return beside if os.path.exists(beside) else path


def expand_flagfiles(args, base=None, stack=()):
    """``args`` with every --flagfile=PATH replaced by the file's flags, recursively. A nested PATH that does not
    exist relative to the working directory is taken relative to the including file's folder."""
    out = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + list(args[i:])
        name, sep, value = arg.lstrip("-").partition("=")
        if not (arg.startswith("-") and name == "flagfile" and sep):
            out.append(arg)
            continue
        path = _resolve(value, base)
        if os.path.abspath(path) in stack:
            raise flags.Error(f"--flagfile={value}: includes itself")
        try:
            with open(path) as fh:
                lines = [line.strip() for line in fh]
        except OSError as e:
            where = f" (nor beside {os.path.join(base, '')})" if base else ""
            raise flags.Error(f"--flagfile: cannot open {value!r}{where}: {e.strerror}") from None
        lines = [line for line in lines if line and not line.startswith(("#", "//"))]
        out += expand_flagfiles(lines, os.path.dirname(os.path.abspath(path)), stack + (os.path.abspath(path),))
    return out


def parse(argv):
    """absl's flags parser with flagfiles resolved as above, the project's flags that this entry point does not
    define accepted and ignored, and a parse error as one line and exit status 2."""
    try:
        args = expand_flagfiles(argv[1:])
        others = sorted(set(config.all_flags()) - set(FLAGS))
        return FLAGS([argv[0], *args, *([f"--undefok={','.join(others)}"] if others else [])])
    except flags.Error as e:
        fail(str(e))  # before absl logging is set up: one line, nothing else


def fail(message):
    """Ends an entry point with one clear line ``error: ...`` on stderr and exit status 2 (no traceback, no
    second copy of the message in the absl log)."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    # Nothing after the line: TF logs warnings when objects of an aborted restore are collected at exit.
    pylogging.getLogger("tensorflow").setLevel(pylogging.CRITICAL)
    sys.exit(2)


def call(main, argv):
    """``main(argv)`` with the project's errors (docs/design.md, "Errors"): a UserError or StageError ends the
    process with one line ``error: ...`` on stderr and exit status 2; any other exception is a bug and keeps its
    traceback."""
    from daaa_tf import StageError, UserError

    try:
        return main(argv)
    except (UserError, StageError) as e:
        fail(str(e))


def run_main(main):
    """absl.app.run(main) with ``parse`` (a flag error: one line, exit status 2) and ``call``."""
    from absl import app

    def quiet(argv):
        # TF's checkpoint saver logs an INFO line per save into the progress bar; -v / --verbosity restores it.
        if not FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)
        return call(main, argv)

    app.run(quiet, flags_parser=parse)
