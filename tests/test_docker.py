"""The container image: hadolint, the Dockerfile's promises, and its install and run steps
reproduced in a fresh virtualenv (no container engine runs here)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from .conftest import ROOT, free_port, require_tool, wait_until

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def runtime_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def test_hadolint_reports_nothing() -> None:
    hadolint = require_tool("hadolint")
    result = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_dockerfile_keeps_its_promises() -> None:
    steps = instructions()
    froms = [rest for k, rest in steps if k == "FROM"]
    assert len(froms) == 2, "multi-stage"
    for image in froms:
        assert re.match(r"python:\d+\.\d+\.\d+-slim-\w+", image), (
            f"{image} is not pinned by version"
        )
    runtime = runtime_stage()
    user = next(rest for k, rest in runtime if k == "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    env = " ".join(rest for k, rest in runtime if k == "ENV")
    assert "PYTHONUNBUFFERED=1" in env and "PYTHONDONTWRITEBYTECODE=1" in env
    assert ("EXPOSE", "9877") in runtime
    assert json.loads(next(rest for k, rest in runtime if k == "ENTRYPOINT"))[0] == "python"
    assert any(k == "HEALTHCHECK" for k, _ in runtime)
    assert not any(k == "RUN" and "pip" in rest for k, rest in runtime), "no installs at run time"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[1] == "*" and "!requirements.txt" in ignored


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the build stage makes: /opt/venv from requirements.txt, /app from the COPY lines."""
    root = tmp_path_factory.mktemp("image")
    venv.create(root / "opt" / "venv", with_pip=True)
    pip = root / "opt" / "venv" / "bin" / "pip"
    install = next(rest for k, rest in instructions() if k == "RUN" and "pip install" in rest)
    assert install.endswith("-r /tmp/requirements.txt")
    subprocess.run(
        [str(pip), "install", "--quiet", "--no-cache-dir", "-r", str(ROOT / "requirements.txt")],
        check=True,
    )
    for keyword, rest in instructions():
        if (
            keyword == "COPY"
            and not rest.startswith("--from")
            and rest.split()[-1].startswith("/app")
        ):
            source, target = rest.split()
            destination = root / target.lstrip("/")
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, destination)
    return root


def run_like_the_image(
    root: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    entrypoint = json.loads(next(rest for k, rest in runtime_stage() if k == "ENTRYPOINT"))
    python = root / "opt" / "venv" / "bin" / "python"
    command = [
        str(python),
        *(str(root / a.lstrip("/")) if a.startswith("/app") else a for a in entrypoint[1:]),
        *args,
    ]
    env = {
        "PATH": f"{python.parent}:/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": "/nonexistent",
    }
    return subprocess.run(
        command,
        cwd=root / "app",
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_image_version(image_root: Path) -> None:
    result = run_like_the_image(image_root, "--version")
    assert result.returncode == 0
    assert result.stdout.startswith("scribe-exporter 0.1.0")


def test_image_config_check(image_root: Path, tmp_path: Path) -> None:
    (tmp_path / "acme").write_text("sk_test_image\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"workspaces:\n  - name: acme\n    api_key_file: {tmp_path / 'acme'}\n")
    result = run_like_the_image(image_root, f"--config.file={config}", "--config.check")
    assert result.returncode == 0, result.stderr
    assert "valid: 1 workspaces" in result.stdout
    # The image's default CMD points at the chart's mount; without it the error is clear.
    cmd = json.loads(next(rest for k, rest in runtime_stage() if k == "CMD"))
    missing = run_like_the_image(image_root, *cmd, "--config.check")
    assert missing.returncode == 1
    assert "cannot read config file /etc/scribe-exporter/config.yaml" in missing.stderr


def test_image_demo_once_writes_nothing_outside_tmp(image_root: Path) -> None:
    before = {p for p in image_root.rglob("*")}
    result = run_like_the_image(image_root, "--demo", "--once")
    assert result.returncode == 0, result.stderr
    assert 'scribe_up{granularity="hour",workspace="acme"} 1\n' in result.stdout
    assert {p for p in image_root.rglob("*")} == before  # a read-only root filesystem would do


def test_image_healthcheck_command(image_root: Path) -> None:
    port = free_port()
    healthcheck = next(rest for k, rest in runtime_stage() if k == "HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[0] == "python"
    python = str(image_root / "opt" / "venv" / "bin" / "python")
    probe = [python, *(c.replace(":9877", f":{port}") for c in command[1:])]
    server = subprocess.Popen(
        [
            python,
            str(image_root / "app" / "exporter.py"),
            "--demo",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        wait_until(
            lambda: subprocess.run(probe, capture_output=True, check=False).returncode == 0,
            what="healthy",
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    # With the server gone the same probe reports unhealthy.
    assert subprocess.run(probe, capture_output=True, check=False).returncode == 1
