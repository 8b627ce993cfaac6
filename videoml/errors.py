"""Errors a user can cause. The CLI prints them as one line and exits non-zero; no traceback unless ``--debug``."""


class VideomlError(Exception):
    """A problem with the user's input (a path, a value, a file): the message says what and where."""

    exit_code = 1


class UsageError(VideomlError):
    """A bad command-line value or combination of options."""

    exit_code = 2
