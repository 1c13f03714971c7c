"""What the SQL box offers to complete: table and column names, common DuckDB functions, keywords.

Pure functions over a ``Catalog`` (read from the database on a thread worker, see
``db.queries.schema_catalog``), so completion never waits for DuckDB. The word before
the cursor is completed; after ``name.`` only that table's (or alias's) columns are
offered; columns of the tables the query already names come first. Nothing inside a
string literal is completed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Functions people reach for in this database: aggregates, windows, maps and lists, maths, time.
FUNCTIONS = (
    "abs", "any_value", "arg_max", "arg_min", "array_agg", "avg", "ceil", "coalesce", "corr", "count",
    "cume_dist", "date_diff", "date_trunc", "dense_rank", "element_at", "epoch", "exp", "first", "floor",
    "greatest", "histogram", "isfinite", "json_extract", "lag", "last", "lead", "least", "len", "list",
    "list_aggregate", "list_contains", "list_transform", "ln", "log10", "log2", "lower", "map_extract",
    "map_keys", "map_values", "max", "max_by", "median", "min", "min_by", "mode", "now", "nullif",
    "percent_rank", "pow", "printf", "quantile_cont", "quantile_disc", "rank", "regexp_extract",
    "regexp_matches", "regexp_replace", "round", "row_number", "sqrt", "stddev_pop", "stddev_samp",
    "string_agg", "strftime", "sum", "to_timestamp", "unnest", "upper", "var_samp",
)  # fmt: skip
KEYWORDS = (
    "ALL", "AND", "AS", "ASC", "BETWEEN", "BY", "CASE", "CAST", "DESC", "DESCRIBE", "DISTINCT", "ELSE",
    "END", "EXCLUDE", "FILTER", "FROM", "GROUP", "HAVING", "ILIKE", "IN", "IS", "JOIN", "LEFT", "LIKE",
    "LIMIT", "NOT", "NULL", "NULLS", "ON", "OR", "ORDER", "OVER", "PARTITION", "PIVOT", "QUALIFY",
    "SELECT", "SHOW", "SUMMARIZE", "THEN", "UNION", "UNPIVOT", "USING", "WHEN", "WHERE", "WINDOW", "WITH",
)  # fmt: skip

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_QUALIFIED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z0-9_]*)$")
_SOURCES = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)(?:\s+(?:AS\s+)?([A-Za-z_][A-Za-z0-9_]*))?", re.I)


@dataclass(frozen=True)
class Relation:
    """A table or view with its columns (name, type) and its documentation."""

    name: str
    kind: str  # "table" | "view"
    comment: str | None
    columns: tuple[tuple[str, str, str | None], ...]  # (name, type, comment)


@dataclass(frozen=True)
class Catalog:
    relations: tuple[Relation, ...] = ()

    def relation(self, name: str) -> Relation | None:
        return next((r for r in self.relations if r.name.lower() == name.lower()), None)


@dataclass(frozen=True)
class Completion:
    """Candidates for the ``prefix`` that ends at the cursor, best first."""

    prefix: str
    candidates: tuple[str, ...] = field(default_factory=tuple)

    def suffix(self, index: int = 0) -> str:
        """What to insert at the cursor for candidate ``index``."""
        if not self.candidates:
            return ""
        return self.candidates[index % len(self.candidates)][len(self.prefix) :]


def complete(text_before_cursor: str, catalog: Catalog, full_text: str | None = None) -> Completion:
    """Candidates completing the word that ends ``text_before_cursor``; ``full_text`` (the
    whole query) tells which tables it reads, so their columns come first."""
    if _in_string(text_before_cursor):
        return Completion("")
    full_text = text_before_cursor if full_text is None else full_text
    qualified = _QUALIFIED.search(text_before_cursor)
    if qualified:
        owner, prefix = qualified.groups()
        relation = catalog.relation(_aliases(full_text).get(owner.lower(), owner))
        if relation is not None:
            names = [c[0] for c in relation.columns]
        else:  # an alias not defined yet (SELECT before FROM): any column
            names = list(dict.fromkeys(c[0] for r in catalog.relations for c in r.columns))
        return Completion(prefix, tuple(n for n in names if _starts(n, prefix) and n != prefix))
    match = _WORD.search(text_before_cursor)
    if not match:
        return Completion("")
    prefix = match.group(0)
    before = text_before_cursor[: match.start()].rstrip().upper()
    tables = [r.name for r in catalog.relations]
    used = [catalog.relation(t) for t in _aliases(full_text).values()]
    near = [c[0] for r in used if r for c in r.columns]
    other = [c[0] for r in catalog.relations for c in r.columns]
    keywords = [k if prefix[:1].isupper() else k.lower() for k in KEYWORDS]
    if before.endswith(("FROM", "JOIN", "DESCRIBE", "SUMMARIZE")):
        ordered = tables
    else:
        ordered = near + tables + other + list(FUNCTIONS) + keywords
    seen: set[str] = set()
    out = []
    for name in ordered:
        if _starts(name, prefix) and name != prefix and name.lower() not in seen:
            seen.add(name.lower())
            out.append(name)
    return Completion(prefix, tuple(out))


def _starts(name: str, prefix: str) -> bool:
    return name.lower().startswith(prefix.lower())


def _aliases(sql: str) -> dict[str, str]:
    """alias (or table name) -> table, for the tables after FROM and JOIN."""
    out: dict[str, str] = {}
    for table, alias in _SOURCES.findall(sql):
        out[table.lower()] = table
        if alias and alias.upper() not in {k for k in KEYWORDS}:
            out[alias.lower()] = table
    return out


def _in_string(text: str) -> bool:
    """Inside a '...' literal (doubled quotes count twice, so they cancel out)."""
    return text.count("'") % 2 == 1
