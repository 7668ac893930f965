"""daaa-tf: Deep Adversarial Attention Alignment (Kang et al., ECCV 2018) in TensorFlow 2 / Keras 3.

Errors (docs/design.md, "Errors"): ``UserError`` is bad user input (a file, a flag, data), raised with the file
or flag named and what was expected; ``StageError`` is a run that cannot go on (a diverged loss, a run directory
that holds another run, a failed pipeline stage), its message says what to do next. The entry points print
either as one line ``error: ...`` and exit with status 2; any other exception is a bug and keeps its traceback.
"""

__version__ = "0.1.0"


class UserError(ValueError):
    """Bad user input: one line naming the file or flag and what was expected (exit status 2 at the CLI).

    A ValueError, so callers that caught the ValueErrors of the readers keep working."""


class MissingFileError(UserError, FileNotFoundError):
    """A UserError for a file or directory the user named (or a stage needs) that is not there; also a
    FileNotFoundError for callers that catch that."""


class StageError(RuntimeError):
    """A run cannot go on (diverged loss, a run directory holding another run, a failed pipeline stage); the
    message says what to do next. Printed like a UserError: one line, exit status 2."""
