"""Errors a user can cause. The CLI prints them as one line and exits non-zero; no traceback unless ``--debug``."""


class VideomlError(Exception):
    """A problem with the user's input (a path, a value, a file): the message says what and where."""

    exit_code = 1


class UsageError(VideomlError):
    """A bad command-line value or combination of options."""

    exit_code = 2


class VideoDecodeError(VideomlError):
    """A video file that cannot be read (missing, empty, not a video, truncated, corrupt, unsupported codec)."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message (its type's name when it has none), for one-line errors."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
