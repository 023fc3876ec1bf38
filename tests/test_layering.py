"""The package's layers: who may import what (data flows one way)."""

from __future__ import annotations

import ast
from pathlib import Path

import workbench as wb

ROOT = Path(wb.__file__).parent


def _imports(path: Path) -> list[str]:
    """Absolute module names imported by `path` (relative imports resolved)."""
    rel = path.relative_to(ROOT.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append(mod)
            out += [f"{mod}.{a.name}" for a in node.names]
    return out


def _modules(exclude: str | None = None) -> list[Path]:
    return [p for p in ROOT.rglob("*.py")
            if exclude is None or exclude not in p.relative_to(ROOT).parts]


def test_store_private_modules_are_imported_by_store_alone() -> None:
    bad = []
    for path in _modules(exclude="store"):
        for name in _imports(path):
            parts = name.split(".")
            if parts[:2] == ["workbench", "store"] and len(parts) > 2 and parts[2].startswith("_"):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_only_the_distributed_package_imports_ray() -> None:
    bad = [f"{p.relative_to(ROOT)} imports {n}" for p in _modules(exclude="distributed")
           for n in _imports(p) if n == "ray" or n.startswith("ray.")]
    assert not bad, "\n".join(bad)


def test_nothing_below_imports_the_distributed_package() -> None:
    bad = [f"{p.relative_to(ROOT)} imports {n}" for p in _modules(exclude="distributed")
           if p.relative_to(ROOT).parts[0] not in ("cli",)
           for n in _imports(p) if n.startswith("workbench.distributed")]
    assert not bad, "\n".join(bad)


def test_the_checks_see_a_private_import(tmp_path: Path) -> None:
    # the resolver must resolve relative imports, or the tests above pass vacuously
    names = _imports(ROOT / "store" / "store.py")
    assert "workbench.store._read" in names and "workbench._atomic" in names
