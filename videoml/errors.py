"""Errors a user can cause. The CLI prints them as one line and exits non-zero; no traceback unless ``--debug``."""

import re

class VideomlError(Exception):
    """A problem with the user's input (a path, a value, a file): the message says what and where."""

    exit_code = 1


class UsageError(VideomlError):
    """A bad command-line value or combination of options."""

    exit_code = 2


class VideoDecodeError(VideomlError):
    """A video file that cannot be read (missing, empty, not a video, truncated, corrupt, unsupported codec).
    ``said``: the cause was already reported for this video and others (a damaged shard, once for all its samples)."""

    def __init__(self, path, reason: str, said: bool = False):
        self.path, self.reason, self.said = str(path), reason, said
        super().__init__(f"{path}: {reason}")


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message (its type's name when it has none), for one-line errors."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def option_error_line(error: BaseException) -> str:
    """A command-line parser's error (jsonargparse's, several lines) in one line, led by the option it is about:
    ``--num_workers: -1 does not conform to restriction v>=0`` (underscores: the spelling every parser accepts,
    LightningCLI's dotted options included)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    key = re.match(r'Parser key "([^"]+)":\s*(.*)', text)
    if not key:
        return text
    detail = key.group(2)
    reason = re.search(r"Not of type \w+: (.*?)(?= - |$)|(Expected a .*?)(?= - |$)", detail)
    text = f"--{key.group(1)}: {next(g for g in reason.groups() if g) if reason else detail}"
    given = re.search(r"(?:Given value|Got value): (.*?)(?= \(| - | Given value type:|$)", detail)
    text = re.sub(r"\. Got value: .*$", "", text)
    text = re.sub(r"Expected a typing\.Literal\[(.*?)\]", lambda m: "expected one of " + m.group(1).replace("'", ""), text)
    return text + (f", got {given.group(1)}" if given else "")


# The extra that installs an optional package a configuration may name (a logger, say)
EXTRAS = {"wandb": "wandb", "mlflow": "mlflow", "tensorboard": "tf", "h5py": "hdf5", "onnx": "onnx",
          "onnxruntime": "onnx", "ray": "ray", "transformers": "hf", "tensorflow": "tf", "pyarrow": "parquet",
          "webdataset": "shards", "boto3": "shards"}


def missing_package(error: BaseException) -> str | None:
    """The package that ``error``, or an error it was raised from, says is not installed: a ModuleNotFoundError's,
    or the requirement in Lightning's "Requirement 'wandb>=0.12.10' not met" (which jsonargparse wraps when it
    instantiates a configured class); None when it says no such thing."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ModuleNotFoundError) and error.name:
            return error.name.split(".")[0]
        requirement = re.search(r"Requirement '([A-Za-z0-9_.-]+)", str(error))
        if requirement:
            return re.split(r"[<>=!~\[]", requirement.group(1))[0]
        error = error.__cause__ or error.__context__
    return None


def install_hint(package: str) -> str:
    """How to install ``package``: its videoml extra where it has one."""
    return f"pip install 'videoml[{EXTRAS[package]}]'" if package in EXTRAS else f"pip install {package}"
