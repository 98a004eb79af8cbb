"""Train a scikit-learn classifier on the iris data set and save it as an slml artifact.

    python train.py            # writes artifacts/iris (replacing an earlier one)
    python train.py --version 2 --max-iter 50

Then `slml deploy` in this directory serves it (see README.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import slml

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "artifacts" / "iris")
    parser.add_argument("--version", default="1")
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--onnx", action="store_true",
                        help="export to ONNX (serves with onnxruntime, no scikit-learn)")
    args = parser.parse_args()

    data = load_iris()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=args.max_iter))
    species = data.target_names[data.target]  # predict "setosa", not 0
    model.fit(data.data, species)
    print(f"trained: accuracy on the training data {model.score(data.data, species):.3f}")

    info = slml.save_model(
        model,
        args.out,
        sample_input=data.data[:5],
        name="iris",
        version=args.version,
        overwrite=True,
        export="onnx" if args.onnx else None,
    )
    print(f"saved {info.name} version {info.version} ({info.flavor}) to {info.path}")


if __name__ == "__main__":
    main()
