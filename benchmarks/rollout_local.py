"""What a local rollout costs: latency at c=8 straight to one version, through the router
with a 10 percent canary, and with a shadow; and how 2,000 requests split.

    python -m benchmarks.rollout_local [--requests 1500] [--out FILE.json]

Deploys a small sklearn iris model in a temporary project (the real local provider,
real servers), drives it with ``benchmarks.loadgen`` in its own process, destroys it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import yaml

from slml import api

ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


def _artifact(dest: Path, version: str, seed: int) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from slml import save_model

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=150 + seed, random_state=seed).fit(x, y)
    shutil.rmtree(dest, ignore_errors=True)
    save_model(model, dest, sample_input=x[:3].tolist(), version=version)


def _load(url: str, requests: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.loadgen", "--url", f"{url}/predict", "--body",
         json.dumps(ROW), "--concurrency", "8", "--requests", str(requests), "--duration", "60"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return dict(json.loads(done.stdout))


def _split(url: str, n: int) -> dict[str, int]:
    with httpx.Client(timeout=30) as client:
        return dict(Counter(client.post(f"{url}/predict", json=ROW).json()["version"]
                            for _ in range(n)))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/rollout_local.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        _artifact(project / "model", "1", 0)
        (project / "slml.yaml").write_text(yaml.safe_dump({"name": "bench", "model": "model"}))
        results: dict[str, Any] = {}
        try:
            url = api.deploy(project).url
            results["one_version_direct"] = _load(url, args.requests)
            _artifact(project / "model", "2", 1)
            api.deploy(project, canary=10)
            results["canary_10_via_router"] = _load(url, args.requests)
            results["split_of_2000"] = _split(url, 2000)
            api.rollback(project)
            api.deploy(project, shadow=True)
            results["shadow_via_router"] = _load(url, args.requests)
        finally:
            api.destroy(project)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
