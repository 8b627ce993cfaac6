"""The ``videoml`` commands as typed functions: each parameter is an option (a dataclass parameter contributes its
fields), its docstring the help. :mod:`videoml.cli` generates the command line from them with jsonargparse, so every
command also reads ``--config FILE`` and prints ``--print_config``; Python code can call them directly."""

__all__ = ["bench", "data", "parser", "run", "tf"]
