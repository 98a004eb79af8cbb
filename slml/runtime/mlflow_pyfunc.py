"""The loader of the ``mlflow`` flavor: an MLflow model directory shipped in the
artifact (``flavor_options.dir``), loaded with ``mlflow.pyfunc.load_model``.

Imported only for that flavor (named by ``flavor_options.loader``), so mlflow is
imported only by bundles that serve such a model. A pyfunc model takes a pandas
DataFrame with the signature's column names (``columns`` signatures) or a numpy array
(``tensor``); without a signature, a DataFrame of the rows as sent.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from slml.runtime.flavors import Predictor, _inside, to_array
from slml.runtime.validation import Batch


def load(artifact_dir: Path, manifest: dict[str, Any]) -> Predictor:
    """``mlflow.pyfunc.load_model`` of the shipped directory. Raises
    ArtifactFormatError for a directory outside the artifact."""
    import mlflow.pyfunc

    options = manifest.get("flavor_options") or {}
    where = _inside(artifact_dir, options.get("dir", "model/mlflow"), "dir")
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # a model from code is imported from the artifact,
    try:  # which must stay as listed: no __pycache__ beside it
        model = mlflow.pyfunc.load_model(str(where))
    finally:
        sys.dont_write_bytecode = writes_bytecode
    signature = manifest.get("signature") or {}
    kind = (signature.get("inputs") or {}).get("kind")

    def predict(batch: Batch) -> Any:
        import pandas as pd

        if kind == "tensor":
            return model.predict(to_array(batch, as_frame=False))
        if batch.validated:
            return model.predict(pd.DataFrame(batch.rows, columns=batch.columns))
        return model.predict(pd.DataFrame(batch.rows))

    return predict
