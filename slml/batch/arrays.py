"""CSV partitions of plain numbers parsed here, in C++ by pyarrow, for models that take one
float64 array (``slml.runtime.batch.numeric_inputs``): the workers then only predict.

A partition qualifies only when every line has exactly the file's fields and every
feature field is a finite number that pyarrow reads; anything else (a quote, a missing
or non-numeric field, NaN, infinity, another field count) returns None and the partition
goes to the worker as text, where the endpoint's own per-field checks decide. pyarrow's
float reader accepts a subset of what ``float()`` does, with the same values (both round
correctly), so a partition that qualifies is scored exactly as the text path would.
"""

from __future__ import annotations

from typing import Any


def numeric_columns(text: str, header: list[str], features: list[str], rows: int
                    ) -> bytes | None:
    """The ``features`` columns of the CSV lines ``text`` (no header, ``rows`` lines) as
    native float64 values, one column after the other; None when a value is not plainly
    a finite number."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            pa.py_buffer(text.encode()),
            read_options=pacsv.ReadOptions(column_names=header),
            parse_options=pacsv.ParseOptions(quote_char=False, newlines_in_values=False,
                                             ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.float64() for name in features},
                include_columns=features, null_values=[], strings_can_be_null=False,
                quoted_strings_can_be_null=False),
        )  # fmt: skip
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != rows:
        return None
    parts: list[Any] = []
    for name in features:
        column = table.column(name).combine_chunks()
        if column.null_count or not pc.all(pc.is_finite(column)).as_py():
            return None
        data = column.buffers()[1]
        parts.append(memoryview(data)[column.offset * 8 : (column.offset + len(column)) * 8])
    return b"".join(parts)
