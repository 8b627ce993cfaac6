"""The import graph follows the layers in README's layout: a module imports only from its own layer or those below,
data never imports models, the TensorFlow side never imports the LightningModule, and the training recipe imports
neither Lightning nor TensorFlow. Read from the source (every import, also inside functions)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "videoml"
# lowest first; a module's layer is that of its longest matching prefix
LAYERS = [
    ("videoml.errors", "videoml.vocab", "videoml.spec", "videoml.fileio", "videoml.processes", "videoml.environment",
     "videoml.compat", "videoml.forkserver_preload", "videoml.profiling", "videoml.runtime", "videoml.recipe",
     "videoml.evaluation"),
    ("videoml.data",),
    ("videoml.models",),
    ("videoml.train", "videoml.infer", "videoml.export", "videoml.tf"),
    ("videoml.bench",),
    ("videoml.api", "videoml.commands"),
    ("videoml.cli", "videoml.__main__"),
]
FORBIDDEN = {  # besides the layer order
    "videoml.tf": ("videoml.train",),
    "videoml.recipe": ("lightning", "pytorch_lightning", "tensorflow", "keras"),
    "videoml.evaluation": ("lightning", "pytorch_lightning", "tensorflow", "keras"),
    "videoml.models": ("lightning",),
    "videoml.profiling": ("lightning",),  # infer and bench import it: Lightning costs seconds at every start
    "videoml.infer": ("lightning",),
}


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int | None:
    if module == "videoml":  # the package's __init__: the Python API's entry
        return _layer("videoml.api")
    matches = [(len(prefix), i) for i, names in enumerate(LAYERS) for prefix in names
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_every_import_goes_down_the_layers():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _name(path)
        own = _layer(module)
        assert own is not None, f"{module} has no layer in LAYERS"
        for imported in _imports(path):
            if imported == "videoml":  # the package itself (installs the compat module)
                continue
            layer = _layer(imported)
            if layer is not None and layer > own:
                problems.append(f"{module} imports {imported} (a higher layer)")
            for prefix, banned in FORBIDDEN.items():
                if (module == prefix or module.startswith(prefix + ".")) and \
                        any(imported == b or imported.startswith(b + ".") for b in banned):
                    problems.append(f"{module} imports {imported}")
    assert not problems, "\n".join(problems)
