"""examples/provider-docker deploys for real: the Cloud Run image built by `docker build`
(pip through the test's index proxy, given as a build argument from the plug-in's own
`docker.build_args`), run with `--network host` on 127.0.0.1, answering predictions."""

from __future__ import annotations

import json
from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from containers.images.recipes import PYTHON_311
from tests.conftest import write_sklearn_artifact
from tests.e2e.test_provider_docker import plugin_site, slml  # noqa: F401


def test_deploy_serves_predictions_from_the_container(
    engine, base_image, index_proxy, plugin_site: Path, tmp_path: Path  # noqa: F811
) -> None:
    base_image(PYTHON_311)
    x, y = load_iris(return_X_y=True)
    write_sklearn_artifact(tmp_path / "model", LogisticRegression(max_iter=300).fit(x, y))
    (tmp_path / "slml.yaml").write_text(
        "name: iris\nmodel: model\nprovider: docker\ndocker:\n  port: 18093\n"
        "  python_version: '3.11'\n  build_args:\n"
        + "".join(f"    {k}: {v}\n" for k, v in index_proxy.build_args().items())
    )
    try:
        done = slml(tmp_path, plugin_site, "deploy")
        assert done.returncode == 0, done.stdout + done.stderr
        done = slml(tmp_path, plugin_site, "invoke", "--json",
                    '{"instances": [[5.1, 3.5, 1.4, 0.2]]}')
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["predictions"] == [0]
        assert "running" in slml(tmp_path, plugin_site, "status").stdout
        gone = slml(tmp_path, plugin_site, "destroy", "--yes")
        assert gone.returncode == 0, gone.stderr
        assert "not-deployed" in slml(tmp_path, plugin_site, "status").stdout
    finally:
        slml(tmp_path, plugin_site, "destroy", "--yes")
