"""The import rules of docs/ARCHITECTURE.md, read from the source files (no imports are executed)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOMAIN_PACKAGES = sorted(
    p.name for p in (ROOT / "orchestration" / "defs").iterdir() if (p / "__init__.py").exists()
)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, absolute names (relative imports resolved against the file's package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join([*base, node.module] if node.module else base))
            else:
                names.add(node.module or "")
    return names


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def offending(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in python_files(folder)
        for name in sorted(imported_modules(path))
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


def test_the_checker_sees_imports():
    """The rule tests below would pass vacuously if the parser missed imports: check it on known files."""
    assert "dagster" in imported_modules(ROOT / "orchestration" / "partitions.py")
    assert "orchestration.defs.quality.assets" in imported_modules(
        ROOT / "orchestration" / "defs" / "schedules.py"
    )
    assert len(DOMAIN_PACKAGES) >= 6


def test_domain_code_has_no_dagster():
    assert offending("ml", ("dagster", "dagster_dbt", "orchestration")) == []


def test_api_reads_exports_without_the_orchestration_layer():
    assert offending("api", ("dagster", "orchestration")) == []


@pytest.mark.parametrize("package", DOMAIN_PACKAGES)
def test_asset_packages_do_not_import_each_other(package):
    others = tuple(f"orchestration.defs.{p}" for p in DOMAIN_PACKAGES if p != package)
    assert offending(f"orchestration/defs/{package}", others) == []
