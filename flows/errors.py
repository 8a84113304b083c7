"""Expected errors: each kind carries where it happened and the exit code the CLI returns.

The CLI edge turns a :class:`PipelineError` into one short message and its exit code
(DESIGN.md, "Deliveries and publication"): 2 for a bad invocation or setting, 3 for input
that was rejected (a whole file, a bad deal file, a missing delivery). Anything else is a
bug and exits 1, with a traceback only under ``-v``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_SETTING = 2
EXIT_INPUT_REJECTED = 3


class PipelineError(Exception):
    """An expected error: a message for the operator and where it happened."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class SettingsError(PipelineError):
    """A bad invocation or setting (data root, landing, lock, options)."""

    exit_code = EXIT_BAD_SETTING


class InputRejectedError(PipelineError):
    """Input refused as a whole: a file quarantined, unreadable or refused, a bad deal file."""

    exit_code = EXIT_INPUT_REJECTED


class DeliveryMissingError(InputRejectedError):
    """A business date that must have a complete delivery has none."""
