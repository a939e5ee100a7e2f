"""CSV files that spreadsheets open safely and that read back to the same text.

Every CSV the package writes (results tables, the app's ranking, `metadata.csv`) goes through
`write_csv`:

- fields holding a comma, a quote, `\\r` or `\\n` are quoted, so file names and prompts with line
  breaks stay one row (pandas' own `to_csv` leaves a lone `\\r` unquoted);
- text cells a spreadsheet would run as a formula get OWASP's leading `'`: those starting with `=`,
  `+`, `-`, `@`, a tab or `\\r`. Cells that already start with `'` get one more, so the escape is
  reversible: `unescape` (applied by the package's readers) strips exactly one leading `'`.
"""

from __future__ import annotations

import os

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""OWASP's list of first characters that make a spreadsheet cell a formula."""


def escape(text: str) -> str:
    """`text` as a cell no spreadsheet runs: a leading `'` before a formula start or a `'`."""
    return f"'{text}" if text.startswith((*FORMULA_STARTS, "'")) else text


def unescape(text: str) -> str:
    """The text that `escape` was given."""
    return text[1:] if text.startswith("'") else text


def escaped(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of `table` with every text cell escaped (numbers, NaN and None left alone)."""
    table = table.copy()
    for column in table.columns:
        if table[column].dtype == object or pd.api.types.is_string_dtype(table[column]):
            table[column] = table[column].map(lambda v: escape(v) if isinstance(v, str) else v)
    return table


def unescaped(table: pd.DataFrame, columns) -> pd.DataFrame:
    """`table` with the text cells of `columns` (those present) unescaped, in place; returned."""
    for column in columns:
        if column in table.columns:
            table[column] = table[column].map(lambda v: unescape(v) if isinstance(v, str) else v)
    return table


def csv_text(table: pd.DataFrame) -> str:
    """`table` (no index) as escaped CSV text with `\\r\\n` line ends, quoting what needs it."""
    return escaped(table).to_csv(index=False, lineterminator="\r\n")


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write `csv_text(table)` to `path` as UTF-8."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(csv_text(table))
