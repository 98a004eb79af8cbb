"""Arrays both ways, without a Python value per row: CSV partitions of plain numbers
parsed here, in C++ by pyarrow, for models that take one float64 array
(``slml.runtime.batch.numeric_inputs``), so the workers only predict; and the arrays of
predictions they send back (``arrow_predictions``), turned into Arrow arrays for the
output as they are.

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


def arrow_predictions(dtype: str, shape: list[int], data: bytes) -> Any:
    """The Arrow array that ``pa.array`` makes of ``array_values(dtype, shape, data)``
    (what a worker's JSON answer would hold), built from the array's bytes without a
    Python value per row; None where that is not sure to be the same array (2-D, no
    rows, integers past int64, no finite float, text beyond ASCII): the values then go
    the JSON way."""
    import numpy as np

    kind = np.dtype(dtype).kind
    if len(shape) != 1 or not shape[0] or kind not in "biufU":
        return None
    values = np.frombuffer(data, dtype=np.dtype(dtype))
    if kind == "U":
        return _ascii_strings(values)
    if kind == "b":
        return _from_buffers("bool_", len(values), None, np.packbits(values, bitorder="little"))
    if kind == "f":
        return _floats(values.astype(np.float64))
    if kind == "u" and values.dtype.itemsize == 8 and int(values.max()) >= 1 << 63:
        return None  # beyond int64: pa.array refuses the ints, the JSON way decides
    return _from_buffers("int64", len(values), None, values.astype(np.int64))


def _floats(values: Any) -> Any:
    """float64 values; the non-finite ones null (as JSON answers them: ``null``)."""
    import numpy as np

    finite = np.isfinite(values)
    if finite.all():
        return _from_buffers("float64", len(values), None, values)
    if not finite.any():
        return None  # all null: pa.array would type the column null, not double
    return _from_buffers("float64", len(values), np.packbits(finite, bitorder="little"),
                         values)


def _ascii_strings(values: Any) -> Any:
    """numpy's fixed-width text (UTF-32, padded with NUL) as an Arrow string array: the
    offsets and the bytes of each string, when every character is ASCII and none NUL."""
    import numpy as np

    width = values.dtype.itemsize // 4
    if not width or not values.dtype.isnative:
        return None
    codes = values.view(np.uint32).reshape(len(values), width)
    used = codes != 0
    if codes.max() >= 128 or (width > 1 and (used[:, 1:] > used[:, :-1]).any()):
        return None  # beyond ASCII, or a NUL inside a string
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(used.sum(axis=1), out=offsets[1:])
    if offsets[-1] >= 1 << 31:
        return None
    text = codes[used].astype(np.uint8)
    return _from_buffers("string", len(values), None, offsets.astype(np.int32), text)


def _from_buffers(kind: str, size: int, validity: Any, *buffers: Any) -> Any:
    import pyarrow as pa

    nulls = -1 if validity is not None else 0
    return pa.Array.from_buffers(getattr(pa, kind)(), size,
                                 [None if validity is None else pa.py_buffer(validity),
                                  *map(pa.py_buffer, buffers)], null_count=nulls)
