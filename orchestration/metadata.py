"""Metadata helpers shared by the domains: step summaries as metadata, column schemas (for the schema-change checks)."""

from datetime import date

import dagster as dg
import duckdb


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    """``(column, type)`` of a table, in order."""
    return con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()


def table_schema(columns: list[tuple[str, str]]) -> dg.TableSchema:
    """``(column, type)`` pairs as Dagster's ``TableSchema`` (``dagster/column_schema`` metadata)."""
    return dg.TableSchema(columns=[dg.TableColumn(name, type_) for name, type_ in columns])


def column_schema(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dg.TableSchema:
    """The table's columns and types as Dagster's ``TableSchema``."""
    return table_schema(table_columns(con, schema, table))


def summary_metadata(summaries: list[dict], days: list[date], window: list[date] | None = None) -> dict:
    """Step summaries (:mod:`ml.summary`) of ``days`` as Dagster metadata: the last day's in full, and, for a
    range, every day's numbers as a table.

    A daily run has one day, so its numbers plot over partitions; a backfill of a range reports the range's last
    day in the plots (Dagster records one materialisation for the whole range) and each day in ``per_day``.
    ``window`` is the run's partition window when some of its days built nothing (``days`` are those that did).
    """
    window = window or days
    metadata: dict = {"as_of": window[-1].isoformat(), "days_built": len(days)}
    if not summaries:
        return metadata
    last = summaries[-1]
    if len(days) > 1:
        names = [
            k for k, v in last["metrics"].items() if isinstance(v, int | float) and not isinstance(v, bool)
        ][:8]
        rows = ["| day | rows | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for day, s in zip(days, summaries, strict=True):
            m = s["metrics"]
            cells = [f"{m[n]:.4g}" if isinstance(m.get(n), float) else str(m.get(n, "")) for n in names]
            rows.append(
                f"| {day} | {'' if s['row_count'] is None else s['row_count']} | " + " | ".join(cells) + " |"
            )
        metadata["per_day"] = dg.MetadataValue.md("\n".join(rows))
    if last["row_count"] is not None:
        metadata["dagster/row_count"] = last["row_count"]
    for name, value in last["metrics"].items():
        if value is not None:
            metadata[name] = float(value) if isinstance(value, float) else value
    for name, text in last["markdown"].items():
        metadata[name] = dg.MetadataValue.md(text)
    for name, value in last.get("json", {}).items():
        metadata[name] = dg.MetadataValue.json(value)
    return metadata
