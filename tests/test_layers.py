"""The import graph follows the layers in README's layout: a module imports only from its own layer or those below,
data never imports models nor models data, the leaves import nothing of the package, Lightning is imported only where
Lightning is used (training and the data module over the clip room), the TensorFlow side never imports the
LightningModule, and the training recipe imports neither Lightning nor TensorFlow. Read from the source (every
import, also inside functions; ``from videoml import X`` is an import of the package's API unless X is a module)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

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
    ("videoml.cli", "videoml.helpcache", "videoml.__main__"),
]
LIGHTNING = ("lightning", "pytorch_lightning")
FORBIDDEN = {  # besides the layer order
    "videoml.tf": ("videoml.train", *LIGHTNING),
    "videoml.bench": LIGHTNING,  # its workers import only their own framework
    "videoml.data": LIGHTNING,  # the clip room is framework-neutral ...
    "videoml.data.datamodule": (),  # ... and the data module is Lightning's view of it
    "videoml.recipe": ("lightning", "pytorch_lightning", "tensorflow", "keras"),
    "videoml.evaluation": ("lightning", "pytorch_lightning", "tensorflow", "keras"),
    "videoml.models": ("lightning", "videoml.data"),
    "videoml.profiling": ("lightning",),  # infer and bench import it: Lightning costs seconds at every start
    "videoml.infer": ("lightning",),
}
# modules every other one may import: they import nothing of the package
LEAVES = ("videoml.errors", "videoml.spec", "videoml.processes", "videoml.environment", "videoml.compat",
          "videoml.profiling")


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int | None:
    top, _, rest = module.partition(".")
    if module == "videoml" or (top == "videoml" and "." not in rest and not _is_module(module)):  # the API
        return _layer("videoml.api")
    matches = [(len(prefix), i) for i, names in enumerate(LAYERS) for prefix in names
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _rules(prefixes: dict, module: str) -> tuple:
    """The banned imports of ``module``: those of its longest matching prefix."""
    matches = [p for p in prefixes if module == p or module.startswith(p + ".")]
    return prefixes[max(matches, key=len)] if matches else ()


def violations(module: str, imported: str) -> list[str]:
    """What is wrong with ``module`` importing ``imported`` (empty: nothing)."""
    problems = []
    layer, own = _layer(imported), _layer(module)
    if layer is not None and layer > own:
        problems.append(f"{module} imports {imported} (a higher layer)")
    if any(imported == b or imported.startswith(b + ".") for b in _rules(FORBIDDEN, module)):
        problems.append(f"{module} imports {imported}")
    if module in LEAVES and (imported == "videoml" or imported.startswith("videoml.")):
        problems.append(f"{module} imports {imported} (a leaf imports nothing of the package)")
    return problems


def test_every_import_goes_down_the_layers():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _name(path)
        assert _layer(module) is not None, f"{module} has no layer in LAYERS"
        for imported in _imports(path):
            problems += violations(module, imported)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module, imported", [
    ("videoml.tf.data", "lightning"), ("videoml.bench.worker", "lightning.pytorch"),
    ("videoml.data.clips", "lightning"), ("videoml.models.registry", "videoml.data.transforms"),
    ("videoml.spec", "videoml.errors"), ("videoml.data.prepare", "videoml"),
    ("videoml.data.prepare", "videoml.__version__"), ("videoml.models.zoo", "videoml.train.module"),
])
def test_the_rules_catch_each_kind_of_violation(module, imported):
    assert violations(module, imported)


def test_the_data_module_and_training_may_import_lightning():
    assert not violations("videoml.data.datamodule", "lightning") and not violations("videoml.train.cli", "lightning")


def test_the_tensorflow_side_and_its_bench_worker_load_no_lightning():
    """What is imported, not only what the source says: the tf.data pipeline, tf fit and the TensorFlow bench
    worker's modules."""
    code = ("import sys, videoml.tf.data, videoml.tf.fit, videoml.bench.worker, videoml.bench.tf_model; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
