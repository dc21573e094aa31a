"""The arrows of the architecture (`contracts -> committee -> catalog -> market`, see ARCHITECTURE.md), read from the
source: a package imports only the packages below it, a higher package only their public surface (the top-level
package, never `catalog.models` and the like), and the shell no domain package except where the app is assembled (`market.assembly`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("market", "catalog", "committee", "contracts")
DOMAINS = ("catalog", "committee", "contracts")

# The packages each may import, and whether only as a whole (its `__init__` surface).
MAY_IMPORT: dict[str, dict[str, bool]] = {
    "market": {},
    "catalog": {"market": False},
    "committee": {"market": False, "catalog": True},
    "contracts": {"market": False, "catalog": True, "committee": True},
}

# The one module of the shell that names the domain packages (each package's `include`), and the modules that may
# import the app factory (the command line serves it by name, so none today).
ASSEMBLY = {"market.assembly"}
APP_FACTORY_USERS = {"market.assembly", "market.cli"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_submodule(package: str, name: str) -> bool:
    folder = ROOT / package
    return (folder / f"{name}.py").exists() or (folder / name / "__init__.py").exists()


def _imported(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Every module the source imports (at the top, inside functions, under TYPE_CHECKING alike); `from p import m`
    counts as `p.m` when `m` is a module of `p`."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            top = base.split(".")[0]
            if top in PACKAGES and "." not in base:
                found.update(f"{base}.{alias.name}" for alias in node.names if _is_submodule(base, alias.name))
    return found


def _sources() -> list[tuple[str, Path]]:
    return sorted((_module_name(path), path) for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def crossings() -> set[tuple[str, str]]:
    """(importing module, imported module) for every import against the arrows."""
    found: set[tuple[str, str]] = set()
    for module, path in _sources():
        package = module.split(".")[0]
        allowed = MAY_IMPORT[package]
        for imported in _imported(ast.parse(path.read_text(encoding="utf-8")), module, path.name == "__init__.py"):
            top = imported.split(".")[0]
            if imported == "market.app" and module not in APP_FACTORY_USERS:
                found.add((module, imported))
            if top not in DOMAINS or top == package:
                continue
            if package == "market":
                if module not in ASSEMBLY:
                    found.add((module, imported))
            elif top not in allowed or (allowed[top] and imported != top):
                found.add((module, imported))
    return found


def test_the_packages_import_only_along_the_arrows() -> None:
    new = sorted(crossings())
    assert not new, "imports against the arrows (use the lower package's public surface, or a hook):\n" + "\n".join(
        f"  {module} imports {imported}" for module, imported in new
    )


def test_the_checker_sees_a_crossing() -> None:
    tree = ast.parse(
        "from catalog import models\nfrom catalog import view_service\nimport committee.models\nfrom . import rules\n"
    )
    assert _imported(tree, "contracts.x", False) == {"catalog", "catalog.models", "committee.models", "contracts"}
