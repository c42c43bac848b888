"""Writing one table of one chunk: to a temporary name, renamed when complete.

A chunk file exists under its real name only once every row is in it, so an interrupted export
leaves complete files and (at worst) a hidden ``.NAME.tmp`` the next export removes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .chunks import temp_name
from .rows import Row
from .schema import BINARY_KINDS, Column, arrow_schema

if TYPE_CHECKING:
    import pyarrow as pa

#: Rows per Parquet row group (and buffered at most per table).
ROW_GROUP = 50_000
#: Parquet compressions offered (pyarrow's names).
COMPRESSIONS = ("zstd", "snappy", "gzip", "lz4", "brotli", "none")


class WriteError(Exception):
    """A chunk could not be written (a value that does not fit its column, a full disk)."""


class TableWriter(Protocol):
    """Rows in, one complete file out."""

    path: Path
    rows: int

    def add(self, rows: list[Row]) -> None: ...
    def commit(self) -> int: ...
    def abort(self) -> None: ...


def _hex(v: bytes | None) -> str | None:
    return None if v is None else "0x" + v.hex()


def to_arrow(rows: list[Row], columns: tuple[Column, ...], indexes: list[int], schema: pa.Schema) -> pa.Table:
    """Rows (tuples of every column of their table) as an Arrow table of ``columns`` (at
    ``indexes`` in each row) with ``schema``; binary kinds become hex where the schema says string."""
    import pyarrow as pa

    by_column = list(zip(*rows, strict=True)) if rows else [()] * (max(indexes) + 1 if indexes else 0)
    arrays = []
    for col, i, f in zip(columns, indexes, schema, strict=True):
        values: Any = by_column[i]
        if col.kind in BINARY_KINDS and f.type == pa.string():
            values = [_hex(v) for v in values]
        try:
            arrays.append(pa.array(values, type=f.type))
        except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise WriteError(f"column {col.name}: {e}") from None
    return pa.Table.from_arrays(arrays, schema=schema)


class _Base:
    def __init__(self, path: Path, columns: tuple[Column, ...], all_names: tuple[str, ...]) -> None:
        self.path = path
        self.tmp = path.with_name(temp_name(path.name))
        self.columns = columns
        index = {n: i for i, n in enumerate(all_names)}
        self.indexes = [index[c.name] for c in columns]
        self.rows = 0

    def _finish(self) -> int:
        """Make the complete file durable, then give it its name (so even a power cut cannot leave
        a short file under a chunk's name)."""
        fd = os.open(self.tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return self.path.stat().st_size

    def _remove_tmp(self) -> None:
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass


class ParquetTableWriter(_Base):
    """One Parquet file with the table's fixed schema, written a row group at a time."""

    def __init__(
        self, path: Path, columns: tuple[Column, ...], all_names: tuple[str, ...], *, hex: bool, compression: str
    ) -> None:
        import pyarrow.parquet as pq

        super().__init__(path, columns, all_names)
        self.schema = arrow_schema(columns, hex=hex)
        self._buf: list[Row] = []
        self._writer = pq.ParquetWriter(self.tmp, self.schema, compression=compression)

    def add(self, rows: list[Row]) -> None:
        self._buf.extend(rows)
        self.rows += len(rows)
        if len(self._buf) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        self._writer.write_table(to_arrow(self._buf, self.columns, self.indexes, self.schema), row_group_size=ROW_GROUP)
        self._buf = []

    def commit(self) -> int:
        """Write what is buffered, close, and move the file to its real name; its size in bytes."""
        self._flush()
        if self.rows == 0:
            # An empty table is still a file with the schema, so every chunk has every table.
            self._writer.write_table(self.schema.empty_table())
        self._writer.close()
        return self._finish()

    def abort(self) -> None:
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001 - the file is being thrown away
            pass
        self._remove_tmp()


class JsonlTableWriter(_Base):
    """One JSON Lines file: an object per row; bytes as ``0x`` hex, 256-bit values as decimal strings."""

    def __init__(self, path: Path, columns: tuple[Column, ...], all_names: tuple[str, ...]) -> None:
        super().__init__(path, columns, all_names)
        self._names = [c.name for c in columns]
        self._hexed = [c.kind in BINARY_KINDS for c in columns]
        self._f = open(self.tmp, "w", encoding="utf-8")

    def add(self, rows: list[Row]) -> None:
        names, hexed, idx, write = self._names, self._hexed, self.indexes, self._f.write
        for row in rows:
            obj = {n: (_hex(row[i]) if h else row[i]) for n, h, i in zip(names, hexed, idx, strict=True)}
            write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.rows += len(rows)

    def commit(self) -> int:
        self._f.close()
        return self._finish()

    def abort(self) -> None:
        self._f.close()
        self._remove_tmp()
