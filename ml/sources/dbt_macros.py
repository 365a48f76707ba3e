"""The landing contract's vocabularies and limits as a dbt macro file, so dbt's tests read the same values.

``python -m ml.sources.dbt_macros > dbt_project/macros/contract_vocabularies.sql`` (or ``make contract-macros``)
writes the file; it is committed, and ``tests/test_contracts.py`` fails while it differs from what the contract
generates. dbt uses it through the generic test ``accepted_contract_values`` (``vocabulary``: a name of
:data:`ml.sources.schema.VOCABULARIES`) and the macro ``contract_limit(name)`` (a name of
:data:`ml.sources.schema.LIMITS`).
"""

from __future__ import annotations

import sys

from ml.sources.schema import LIMITS, VOCABULARIES

MACRO_FILE = "dbt_project/macros/contract_vocabularies.sql"
COMMAND = f"python -m ml.sources.dbt_macros > {MACRO_FILE}"


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _lookup_macro(macro: str, kind: str, noun: str, entries: dict[str, str]) -> list[str]:
    """A macro returning ``entries[name]`` (Jinja literals), failing the compile on an unknown name."""
    width = max(len(name) for name in entries)
    lines = [f"{{% macro {macro}(name) -%}}", f"    {{%- set {kind} = {{"]
    lines += [f"        {_quoted(name) + ':':<{width + 3}} {value}," for name, value in entries.items()]
    lines += [
        "    } -%}",
        f"    {{%- if name not in {kind} -%}}",
        "        {{ exceptions.raise_compiler_error(",
        f'            "unknown contract {noun} \'" ~ name ~ "\'; known: "'
        f" ~ ({kind} | list | sort | join(', '))",
        "        ) }}",
        "    {%- endif -%}",
        f"    {{{{ return({kind}[name]) }}}}",
        "{%- endmacro %}",
    ]
    return lines


def render() -> str:
    """The text of the macro file for the current contract."""
    vocabularies = {
        name: "[" + ", ".join(_quoted(v) for v in values) + "]" for name, values in VOCABULARIES.items()
    }
    limits = {name: repr(value) for name, value in LIMITS.items()}
    lines = [
        "{#",
        "  Generated from the landing contract (ml/sources/schema.py) by",
        f"      {COMMAND}",
        "  Do not edit: change the contract and regenerate (tests/test_contracts.py fails while they differ).",
        "#}",
        "",
        "{# A closed vocabulary of the contract by name (ml.sources.schema.VOCABULARIES), as a list of strings. #}",
        *_lookup_macro("contract_vocabulary", "vocabularies", "vocabulary", vocabularies),
        "",
        "{# A numeric limit of the contract by name (ml.sources.schema.LIMITS). #}",
        *_lookup_macro("contract_limit", "limits", "limit", limits),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv:
        print(f"usage: {COMMAND}", file=sys.stderr)
        return 2
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
