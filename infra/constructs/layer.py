"""The core Lambda layer: the `payplat` package plus the runtime dependency set from uv.lock.

Built by CDK local bundling with uv (no Docker): uv exports the locked runtime set and
installs manylinux aarch64 wheels for the Lambda Python version into `python/`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.names import (
    ARCHITECTURE,
    ASSET_EXCLUDES,
    CORE_LAYER_DIR,
    REPO_ROOT,
    RUNTIME,
    UV_LOCK,
)

PYTHON_VERSION = RUNTIME.name.removeprefix("python")  # "3.13"
# Lambda's arm64 Python runtimes run on Amazon Linux 2023 (glibc 2.34); manylinux2014 wheels
# (glibc 2.17) run there and every locked dependency publishes one.
PYTHON_PLATFORM = "aarch64-manylinux2014"
# The AWS SDK and its own dependencies come with the Lambda runtime. A second botocore in
# the layer would shadow the runtime's under the runtime's boto3 (a version skew), so the
# locked set is installed without them; aws-xray-sdk uses the runtime's botocore.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "urllib3", "python-dateutil", "six")
# Only named so `BundlingOptions` is complete: local bundling always succeeds or raises.
_UNUSED_IMAGE = f"public.ecr.aws/sam/build-{RUNTIME.name}"


@jsii.implements(ILocalBundling)
class UvLayerBundler:
    """Builds the layer into `output_dir/python` on the host with uv."""

    def __init__(self, repo_root: Path, package_dir: Path) -> None:
        self._repo_root = repo_root
        self._package_dir = package_dir

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: Any) -> bool:
        uv = os.environ.get("UV") or shutil.which("uv")
        if uv is None:
            # Falling back to Docker would need a different build; say what is missing.
            raise RuntimeError("uv is required to bundle the core layer (pip install uv)")
        target = Path(output_dir) / "python"
        with tempfile.TemporaryDirectory(prefix="payplat-layer-") as tmp:
            requirements = Path(tmp) / "requirements.txt"
            # Only the project's runtime dependencies: no dev/infra/local groups, no payplat
            # itself (copied below as source, not as an installed wheel).
            export = "export --frozen --no-default-groups --no-emit-project --no-hashes --quiet"
            omit = [arg for name in RUNTIME_PROVIDED for arg in ("--no-emit-package", name)]
            self._run(uv, *export.split(), *omit, "-o", str(requirements))
            # The exported set is the whole locked closure: install exactly it (--no-deps).
            install = (
                "pip install --quiet --no-deps --link-mode copy --only-binary :all: "
                f"--python-platform {PYTHON_PLATFORM} --python-version {PYTHON_VERSION}"
            )
            self._run(uv, *install.split(), "--target", str(target), "-r", str(requirements))
        # Console scripts would point at this machine's interpreter; Lambda never runs them.
        shutil.rmtree(target / "bin", ignore_errors=True)
        shutil.copytree(
            self._package_dir,
            target / self._package_dir.name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        return True

    def _run(self, *command: str) -> None:
        # Fixed argv, no shell; the only variable parts are paths this bundler made.
        subprocess.run(command, cwd=self._repo_root, check=True)  # noqa: S603


def source_hash(lock_file: Path, tree: Path) -> str:
    """Hash of everything the layer is built from: the lock, the code, the target platform."""
    recipe = f"{PYTHON_PLATFORM}:{PYTHON_VERSION}:{','.join(RUNTIME_PROVIDED)}\n"
    digest = hashlib.sha256(recipe.encode())
    digest.update(lock_file.read_bytes())
    for path in sorted(tree.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        digest.update(path.relative_to(tree).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


class CoreLayer(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=self._build_code(),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="payplat core: domain package + runtime dependencies (uv.lock)",
        )

    def _build_code(self) -> lambda_.Code:
        package_dir = CORE_LAYER_DIR / "payplat"
        return lambda_.Code.from_asset(
            str(CORE_LAYER_DIR),
            # A custom hash so a uv.lock change rebuilds the layer even when no code changed.
            asset_hash=source_hash(UV_LOCK, CORE_LAYER_DIR),
            asset_hash_type=AssetHashType.CUSTOM,
            exclude=list(ASSET_EXCLUDES),
            bundling=BundlingOptions(
                image=DockerImage.from_registry(_UNUSED_IMAGE),
                local=UvLayerBundler(REPO_ROOT, package_dir),
            ),
        )
