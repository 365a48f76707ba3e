"""Metadata helpers shared by the domains: column schemas (for the schema-change checks), markdown and embedded charts."""

import base64

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


def png_markdown(png: bytes, alt: str) -> dg.MarkdownMetadataValue:
    """A PNG embedded in markdown metadata as a data URI: the UI shows the picture itself, not a file link."""
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")
