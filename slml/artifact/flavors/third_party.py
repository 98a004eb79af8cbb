"""A class from an installed third-party package is never the user's own code.

The python flavor ships the source of the model's class. When that class comes from an
installed distribution (site-packages), shipping it would copy the whole package into
the artifact, with the package itself missing from the requirements: refuse, naming
the framework and the supported way.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path
from typing import Any

from slml.artifact import requirements as reqs
from slml.errors import UnsupportedModel, a_or_an

# Frameworks with a flavor of their own, by distribution: what to pass instead.
NATIVE_WAY = {
    "xgboost": "save the Booster itself (flavor 'xgboost', or booster.save_model('model.json') "
    "and `slml save model.json`)",
    "lightgbm": "save the Booster itself (flavor 'lightgbm', or booster.save_model('model.txt') "
    "and `slml save model.txt`)",
    "catboost": "save the model itself (flavor 'catboost', or model.save_model('model.cbm') and "
    "`slml save model.cbm`)",
    "statsmodels": "save the fitted results object (flavor 'statsmodels', or results.save("
    "'model.pickle') and `slml save model.pickle`)",
}


def installed_distribution(cls: type) -> str | None:
    """The distribution that installed ``cls``'s module into site-packages, if any."""
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if not file or not _in_site_packages(Path(file)):
        return None
    return reqs.distribution_of(cls.__module__)


def _in_site_packages(file: Path) -> bool:
    roots = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    resolved = file.resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots) or any(
        part in ("site-packages", "dist-packages") for part in resolved.parts
    )


def refuse_installed_class(model: Any) -> None:
    """Raise UnsupportedModel when ``model``'s class comes from an installed package."""
    cls = type(model)
    dist = installed_distribution(cls)
    if dist is None:
        return
    name = f"{cls.__module__}.{cls.__qualname__}"
    way = NATIVE_WAY.get(reqs.normalise(dist)) or (
        f"slml has no flavor for {dist}: export the model to ONNX if a converter exists, or "
        f"write a small class of your own with predict(inputs) and load(data_dir) that loads "
        f"the model from a file passed as artifacts={{...}} (flavor='python'); {dist} then "
        "becomes a requirement"
    )
    raise UnsupportedModel(
        f"{a_or_an(name)} comes from the installed package {dist}, not from your own code; slml "
        f"will not copy {dist} into the artifact",
        hint=way,
    )
