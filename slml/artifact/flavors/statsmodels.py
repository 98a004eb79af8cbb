"""The statsmodels flavor: a fitted results object (``sm.OLS(...).fit()``,
``smf.logit(...).fit()``, ...; detected), written with its own ``results.save`` to
``model/model.pickle`` and read back with ``statsmodels.iolib.smpickle.load_pickle``.

It serves ``results.predict(exog)``. A formula model needs its variables by name, so it
needs a DataFrame ``sample_input`` (the runtime then hands it a DataFrame); an array
model takes rows as it was fit (with the constant column if it was fit with one).
Requirements come from the pickle's globals, like the sklearn flavor's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from slml.artifact import pickled, schema
from slml.artifact import requirements as reqs
from slml.artifact.flavors import Saved, SaveOptions, native
from slml.errors import ArtifactError, a_or_an
from slml.runtime import native_flavors as runtime

NAME = "statsmodels"
PRIORITY = 20
EXPECTS = "the statsmodels flavor needs a fitted statsmodels results object (model.fit())"
SUPPORTS = "statsmodels results objects (results.save(...), a .pickle file)"
FILE_HELP = "statsmodels: model.pickle, from results.save('model.pickle')"
FILE = "model/model.pickle"


def matches(model: Any) -> bool:
    return (
        not isinstance(model, type)
        and str(type(model).__module__).startswith("statsmodels")
        and callable(getattr(model, "predict", None))
        and callable(getattr(model, "save", None))
        and hasattr(model, "model")
    )


def save(model: Any, root: Path, *, options: SaveOptions) -> Saved:
    """``results.save`` to model.pickle; signature from one predict on the sample."""
    native.require("statsmodels", "statsmodels")
    sample = options.sample_input
    formula = getattr(model.model, "formula", None)
    if formula is not None and not schema.is_dataframe(sample) and not isinstance(sample, dict):
        raise ArtifactError(
            f"this statsmodels model was fit from the formula {formula!r}: it needs its "
            "variables by name, so sample_input must be a DataFrame (or a dict of columns) "
            "with those columns",
            hint="pass sample_input=df.head() (slml save: --sample rows.csv)",
        )
    path = native.model_dir(root) / "model.pickle"
    model.save(str(path))
    dists = pickled.requirements_of(model)
    method = options.method or "predict"
    reloaded = runtime.open_statsmodels(path)
    call = getattr(reloaded, method, None)
    if not callable(call):
        raise ArtifactError(f"{a_or_an(type(model).__name__)} has no method {method!r}")
    names = None if formula is not None else _exog_names(model)
    return Saved(
        flavor=NAME,
        framework=reqs.framework("statsmodels"),
        requirements=native.pins(["statsmodels", *dists], sample),
        flavor_options={"file": FILE, "method": method},
        signature=native.signature(sample, names=names, width=_width(model), call=call),
    )


def _exog_names(model: Any) -> list[str] | None:
    """The model's column names, unless they are statsmodels' placeholders (x1, x2...)."""
    names = [str(n) for n in getattr(model.model, "exog_names", None) or []]
    if all(n == "const" or re.fullmatch(r"x\d+", n) for n in names):
        return None
    return names


def _width(model: Any) -> int | None:
    exog = getattr(model.model, "exog", None)
    shape = getattr(exog, "shape", None)
    return int(shape[1]) if shape is not None and len(shape) == 2 else None
