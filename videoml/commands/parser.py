"""How a command's parser is generated from its function (jsonargparse), and the conventions every command shares.

A command is a typed function: each parameter is an option, a dataclass parameter contributes its fields as options
(documented by their attribute docstrings), the docstring's ``Args:`` give the help. Every command takes
``--config FILE`` (YAML of its options) and ``--print_config``. Options are spelled with underscores as in config
files (``--num_workers``) or with dashes (``--num-workers``); a bool option given alone is true (``--force``),
``--no-X`` sets X false; a list option takes YAML (``[a, b]``) or comma-separated values.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import inspect
import sys
import types
import typing
from dataclasses import dataclass, field

import docstring_parser
from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter, set_parsing_settings

from videoml.errors import UsageError
from videoml.vocab import PRECISION_NAMES

# how docstrings are read for help: every style jsonargparse knows, and dataclass fields' docstrings (their help)
HELP_TEXT = dict(docstring_parse_attribute_docstrings=True, docstring_parse_style=docstring_parser.DocstringStyle.AUTO)
set_parsing_settings(**HELP_TEXT)


@contextlib.contextmanager
def help_text_if_asked(args: list[str]):
    """Parsers built inside skip most docstring parsing unless ``args`` ask for help: a run needs none of it.
    (jsonargparse parses every class's docstrings while it builds a parser, in every style it knows and with the
    source of each attribute: 2 of the 2.5 s LightningCLI took to read a fit config here.)"""
    if {"-h", "--help"} & set(args):
        yield
        return
    set_parsing_settings(docstring_parse_attribute_docstrings=False,
                         docstring_parse_style=docstring_parser.DocstringStyle.GOOGLE)
    try:
        yield
    finally:
        set_parsing_settings(**HELP_TEXT)


NOT_OPTIONS = {"progress"}  # fields set from the terminal (a progress bar when stderr is one), not by the user


@dataclass(frozen=True)
class Command:
    target: str  # "module:function", imported when the command is parsed or run: --help needs no torch
    help: str
    positional: tuple[str, ...] = ()
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)  # option -> more names ("-m", "--device")
    bare: dict[str, object] = field(default_factory=dict)  # option -> its value when given without one

    @property
    def run(self) -> typing.Callable[..., int]:
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)


def options_of(function) -> dict[str, tuple[object, object]]:
    """option name -> (type, default) of a command: its parameters, a dataclass parameter's fields in its place."""
    options = {}
    for name, hint in typing.get_type_hints(function).items():
        if name == "return":
            continue
        if dataclasses.is_dataclass(hint):
            hints = typing.get_type_hints(hint)
            options.update({f.name: (hints[f.name], f.default) for f in dataclasses.fields(hint) if f.init})
        else:
            options[name] = (hint, inspect.signature(function).parameters[name].default)
    return options


def _is_bool(hint) -> bool:
    """A bool type, or an optional one (``bool | None``: None leaves the choice to the command, ``--no-X`` is false)."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    return hint is bool or (union and set(typing.get_args(hint)) == {bool, type(None)})


def _is_sequence(hint) -> bool:
    """A list or tuple type, or an optional one."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    return any(typing.get_origin(t) in (list, tuple) for t in (typing.get_args(hint) if union else (hint,)))


class HelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help, without a type where the values are listed already (``{pyav,decord,torchcodec}``,
    ``{true,false}``): ``Literal['pyav', ...]`` would say it again in Python."""

    def _get_type_str(self, action) -> str | None:
        listed = isinstance(action.metavar, str) and action.metavar.startswith("{") or action.choices
        return None if listed else super()._get_type_str(action)


def command_parser(prog: str, command: Command, shapes: dict) -> ArgumentParser:
    """The parser of one command; ``shapes`` collects its list and bool options (see :func:`normalize`)."""
    doc = inspect.getdoc(command.run) or ""
    parser = ArgumentParser(prog=prog, description=doc.split("\n\nArgs:")[0], exit_on_error=False,
                            formatter_class=HelpFormatter)
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of these options (see --print_config)")
    options = options_of(command.run)
    for name in command.positional:
        hint, default = options[name]
        # A list may come from --config instead: none on the command line leaves it unset (argparse would set [] over
        # the config's), and :func:`call` asks for a required one that neither gave
        many = {"nargs": "*", "default": argparse.SUPPRESS} if _is_sequence(hint) else \
            {"nargs": "?", "default": default} if default not in (inspect.Parameter.empty, dataclasses.MISSING) else {}
        parser.add_argument(name, type=str, help=_arg_help(doc, name), **many)
    skip = set(command.positional)
    for name, hint in typing.get_type_hints(command.run).items():
        if dataclasses.is_dataclass(hint):
            parser.add_class_arguments(hint, as_group=False, skip=skip | NOT_OPTIONS)
            skip.add(name)
    parser.add_function_arguments(command.run, as_group=False, skip=skip)
    conventional(parser, {k: v for k, v in options.items() if k not in command.positional}, command.aliases,
                 command.bare, shapes)
    return parser


def conventional(parser: ArgumentParser, options: dict, aliases: dict, bare: dict, shapes: dict) -> None:
    """Give ``options`` (name -> (type, default)) their dashed names, ``aliases`` and bare forms; record their shapes
    for :func:`normalize`."""
    for action in parser._actions:  # argparse keeps its options here; the names and bare forms are added to them
        name = action.dest
        if "." in name and name.split(".")[0] in options and action.option_strings:  # a field of an option's
            # dataclass (bench suite's reading.*): its dashed name (LightningCLI's own, in tf fit, stay as they are)
            shown = [f"--{name.replace('_', '-')}"]
            _add_names(parser, action, shown)
            action.option_strings = shown
        if name not in options:
            continue
        shown = [f"--{name.replace('_', '-')}", *aliases.get(name, ())]  # the spellings the docs use
        _add_names(parser, action, shown)
        hint, default = options[name]
        if _is_bool(hint) or name in bare:
            action.nargs, action.const = "?", bare.get(name, True)
        if _is_bool(hint):
            action.metavar = "{true,false}"  # (None: the command decides, which its help says)
        for option in action.option_strings:
            shapes[option] = "bool" if _is_bool(hint) else "list" if _is_sequence(hint) else "value"
        action.option_strings = list(dict.fromkeys(shown))  # --help shows these; the underscored one still parses


def _add_names(parser, action, names) -> None:
    for alias in names:
        if alias not in parser._option_string_actions:
            action.option_strings.append(alias)
            parser._option_string_actions[alias] = action


def _arg_help(doc: str, name: str) -> str | None:
    return next((p.description for p in docstring_parser.parse(doc).params if p.arg_name == name), None)


# Options renamed so that one idea has one name in every command (old -> new): the old spelling still works, with a
# line saying so, for one release
RENAMED = {"--output": "--out", "--timeout": "--decode-timeout", "--batch": "--batch-size",
           "--shard": "--part"}  # (a shard is a file of training data; a job array's task takes a part)
# Values renamed likewise (option -> old value -> new): precisions are Lightning's, as in ``trainer.precision``
RENAMED_VALUES = {"--precision": PRECISION_NAMES}

# What a bool option takes as its value (YAML's spellings, as jsonargparse reads them); any other word after it is
# not its value but the next argument: ``--resume a.mp4`` resumes, with a.mp4 an input
BOOL_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0"})


def normalize(argv: list[str], shapes: dict) -> list[str]:
    """Renamed options and values (:data:`RENAMED`, :data:`RENAMED_VALUES`) -> their names now; ``--no-X`` ->
    ``--X false``; a bool option alone -> ``--X true`` (whatever follows it that is not a bool); a comma-separated
    value of a list option -> a YAML list.
    ``shapes``: option -> "bool", "list" or "value" (:func:`conventional` records them)."""
    out, at = [], 0
    while at < len(argv):
        item, at = argv[at], at + 1
        name = item.split("=", 1)[0]
        renamed = RENAMED.get(name.replace("_", "-"))
        if renamed in shapes:
            print(f"videoml: {name} is now {renamed} (the old name goes in the next release)", file=sys.stderr)
            name, item = renamed, renamed + item[len(name):]
        if name in RENAMED_VALUES and name in shapes:
            item, at = _renamed_value(name, item, argv, at)
        if name.startswith("--no-") and shapes.get("--" + name[5:]) == "bool":
            out += ["--" + name[5:], "false"]
        elif shapes.get(name) == "bool" and "=" not in item and (at == len(argv) or argv[at].lower() not in BOOL_WORDS):
            out += [name, "true"]
        elif shapes.get(name) == "list":
            value, at = (item.split("=", 1)[1], at) if "=" in item else (argv[at] if at < len(argv) else "", at + 1)
            out += [name, value if value.startswith("[") else f"[{value}]"]
        else:
            out.append(item)
    return out


def _renamed_value(name: str, item: str, argv: list[str], at: int) -> tuple[str, int]:
    """``--name VALUE`` / ``--name=VALUE`` with an old VALUE: ``--name=NEW`` (and where the next item is)."""
    value, at = (item.split("=", 1)[1], at) if "=" in item else (argv[at] if at < len(argv) else None, at + 1)
    if value is None:
        return item, at - 1
    new = RENAMED_VALUES[name].get(value, value)
    if new != value:
        print(f"videoml: {name} {value} is now {name} {new} (the old value goes in the next release)",
              file=sys.stderr)
    return f"{name}={new}", at


def _dataclass(hint, values: dict):
    """``hint`` made from parsed values, its dataclass fields (given as dicts) made too."""
    hints = typing.get_type_hints(hint)
    return hint(**{k: _dataclass(hints[k], v) if dataclasses.is_dataclass(hints[k]) and isinstance(v, dict) else v
                   for k, v in values.items()})


def _takes_none(hint) -> bool:
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    return hint is typing.Any or (union and type(None) in typing.get_args(hint))


def call(command: Command, values: dict) -> int:
    """Call a command with parsed values: a dataclass parameter made from its fields."""
    values.pop("config", None)
    options = options_of(command.run)
    for name in command.positional:
        if name not in values and options[name][1] in (inspect.Parameter.empty, dataclasses.MISSING):
            raise UsageError(f"no {name} given, on the command line or in --config (see --help)")
    for name, value in values.items():  # jsonargparse lets a config file's null through for any type
        if value is None and name in options and not _takes_none(options[name][0]):
            raise UsageError(f"{name}: null is not a value it takes (see --help)")
    kwargs = {}
    for name, hint in typing.get_type_hints(command.run).items():
        if dataclasses.is_dataclass(hint):
            fields = {f.name for f in dataclasses.fields(hint) if f.init and f.name not in NOT_OPTIONS}
            kwargs[name] = _dataclass(hint, {k: values.pop(k) for k in fields if k in values})
    return command.run(**kwargs, **values)


MAX_CONFIG_VALUES = 1_000_000  # values a config file may expand to: far more than any recipe, far less than a bomb


def config_files(argv: list[str]) -> list[str]:
    """The files ``--config FILE`` / ``--config=FILE`` name in ``argv``."""
    named = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"]
    return named + [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]


def check_config_size(path: str) -> None:
    """A UsageError when the YAML file's aliases expand to more than MAX_CONFIG_VALUES values (a "billion laughs"
    file: nine nested levels took 10 GB and minutes in the parser), or refer to themselves. Counted on the composed
    node graph, where an alias is the node it names, so the count costs what the file's size does."""
    import yaml

    sizes: dict[int, int] = {}

    def size(node, within: frozenset) -> int:
        if id(node) in within:
            raise UsageError(f"{path}: a YAML alias refers to a value that holds it (a recursive config); not read")
        if id(node) not in sizes:
            children = node.value if isinstance(node, yaml.SequenceNode) else \
                [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else []
            inner = within | {id(node)}
            sizes[id(node)] = 1 + sum(size(child, inner) for child in children)
        return sizes[id(node)]

    try:
        with open(path, "rb") as f:
            root = yaml.compose(f, Loader=yaml.SafeLoader)
        total = size(root, frozenset()) if root is not None else 0
    except (OSError, yaml.YAMLError):
        return  # the parser reports files it cannot read or parse, naming them
    except RecursionError:
        raise UsageError(f"{path}: YAML nested too deeply to read") from None
    if total > MAX_CONFIG_VALUES:
        raise UsageError(f"{path}: its YAML aliases expand to more than {MAX_CONFIG_VALUES:,} values (an alias "
                         "bomb?); not read")
