"""Exporting stored history as tables: blocks, transactions, receipts, logs, withdrawals, ommers.

Every table has one fixed schema (:mod:`.schema`), written in chunk files named by network,
table and block range (:mod:`.chunks`), each complete or absent (:mod:`.writers`), so an
export can be interrupted, resumed and extended (:mod:`.run`). Parquet needs pyarrow
(``pip install ethp2p[export]``); JSON Lines needs nothing.
"""

from .chunks import Chunk, file_name, parse_file_name, plan_chunks
from .rows import RowReader
from .run import ExportError, ExportOptions, ExportPlan, ExportResult, network_name, plan_export, run_export
from .schema import DEFAULT_TABLES, TABLES, Column, arrow_schema, select_columns
from .writers import COMPRESSIONS

__all__ = [
    "COMPRESSIONS",
    "DEFAULT_TABLES",
    "TABLES",
    "Chunk",
    "Column",
    "ExportError",
    "ExportOptions",
    "ExportPlan",
    "ExportResult",
    "RowReader",
    "arrow_schema",
    "file_name",
    "network_name",
    "parse_file_name",
    "plan_chunks",
    "plan_export",
    "run_export",
    "select_columns",
]
