"""Errors a user can cause.

Every `UserError` carries one clear sentence that names the file or value at fault and what to
do about it; the CLI prints it as one line and the GUI shows it as a message, never a traceback.
"""


class UserError(Exception):
    """A problem the user can fix (bad file, bad setting, missing model, out of memory)."""


class ModelError(UserError):
    """A base model that cannot be found, read or recognised."""


class LoraError(UserError):
    """A LoRA or backbone file that cannot be read or does not fit the loaded base model."""


class RequestError(UserError):
    """A request with an invalid setting (size, steps, scheduler, prompt markers...)."""


class OutOfMemory(UserError):
    """The device ran out of memory; the message says what to lower."""


class NonFiniteOutput(UserError):
    """Sampling or training produced NaN/Inf values; nothing was written."""
