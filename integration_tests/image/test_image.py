"""The Docker image, as Airbyte runs it: built with integration_tests/image/image.sh, run with podman.

`podman` is called directly: `docker run` through podman's socket always exits 0 (podman 4.3),
which would hide a failing container.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from integration_tests import cli
from smstools_emulator import CLIENT_SECRET
from source_smstools.components.records import message_id

ROOT = Path(__file__).resolve().parents[2]
IMAGE_SH = ROOT / "integration_tests" / "image" / "image.sh"
IMAGE = "airbyte/source-smstools:dev"
ON_CI = os.environ.get("CI") == "true"
WRONG_SECRET = "wrong-secret-0d41e7"


def metadata() -> dict:
    return yaml.safe_load((ROOT / "metadata.yaml").read_text())["data"]


def dockerfile_base_image() -> str:
    match = re.search(r"^ARG BASE_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert match, "the Dockerfile has no default for ARG BASE_IMAGE"
    return match.group(1)


def dockerfile_labels() -> dict[str, str]:
    return dict(re.findall(r"^LABEL (io\.airbyte\.\w+)=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M))


def test_dockerfile_agrees_with_metadata():
    data = metadata()
    assert dockerfile_base_image() == data["connectorBuildOptions"]["baseImage"]
    assert dockerfile_labels() == {
        "io.airbyte.name": data["dockerRepository"],
        "io.airbyte.version": data["dockerImageTag"],
    }


# -- the built image ----------------------------------------------------------------------------


def _build(pytestconfig: pytest.Config) -> dict[str, str]:
    """Builds the image (a no-op when nothing changed); returns the environment for podman."""
    if shutil.which("podman") is None and not ON_CI:
        pytest.skip("podman is not installed (run `make image` once, or set CI=true to have the test install it)")
    proc = subprocess.Popen(
        ["bash", str(IMAGE_SH), "build"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log = []
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    assert proc.stdout is not None
    for line in proc.stdout:
        log.append(line)
        if line.startswith("[image]"):
            # the progress of the long steps (a first build takes minutes) shows past pytest's capture
            with capture.global_and_fixture_disabled():
                sys.stderr.write(line)
                sys.stderr.flush()
    if proc.wait(timeout=60) != 0:
        pytest.fail(f"image.sh build failed (exit {proc.returncode}):\n{''.join(log[-40:])}", pytrace=False)
    conf = subprocess.run(["bash", str(IMAGE_SH), "env"], capture_output=True, text=True, check=True).stdout
    env = dict(os.environ)
    env.update(re.findall(r"^export (\w+)=(\S+)$", conf, re.M))
    return env


@pytest.fixture(scope="module")
def podman_env(pytestconfig):
    return _build(pytestconfig)


def podman_run(env: dict[str, str], *args: str, mounts: dict[Path, str] | None = None, secrets=(CLIENT_SECRET,)):
    argv = ["podman", "run", "--rm", "--network", "host"]
    for host, container in (mounts or {}).items():
        argv += ["-v", f"{host}:{container}:ro"]
    proc = subprocess.run(argv + [IMAGE, *args], capture_output=True, text=True, timeout=300, env=env)
    for secret in secrets:
        assert secret not in proc.stdout and secret not in proc.stderr, "the client secret leaked into the output"
    return proc, cli.parse(proc.stdout)


def mountable(directory: Path, files: dict[str, object]) -> Path:
    """A new directory of JSON files to mount in the container, readable by its user.

    The connector runs as uid 1000 (`airbyte`), not as the host user who writes the files: the
    directory and files must be readable by others whatever the umask, and tmp_path itself is
    private (0700), so it is never mounted itself."""
    directory.mkdir()
    directory.chmod(0o755)
    for name, content in files.items():
        (directory / name).write_text(json.dumps(content))
        (directory / name).chmod(0o644)
    return directory


def of_type(messages: list[dict], kind: str) -> list[dict]:
    return [m for m in messages if m.get("type") == kind]


@pytest.mark.image
def test_image_labels(podman_env):
    inspect = subprocess.run(
        ["podman", "image", "inspect", IMAGE], capture_output=True, text=True, check=True, env=podman_env
    )
    config = json.loads(inspect.stdout)[0]["Config"]
    data = metadata()
    assert config["Labels"]["io.airbyte.name"] == data["dockerRepository"]
    assert config["Labels"]["io.airbyte.version"] == data["dockerImageTag"]
    assert config["Entrypoint"] == ["source-smstools"]
    assert "AIRBYTE_ENTRYPOINT=source-smstools" in config["Env"]
    assert config["User"] == "airbyte"


@pytest.mark.image
def test_image_runs_as_airbyte(podman_env):
    # the user of Airbyte's python-connector-base (3.0 and later), which the stand-in base copies:
    # every other test here runs the connector as this user too
    proc = subprocess.run(
        ["podman", "run", "--rm", "--entrypoint", "id", IMAGE],
        capture_output=True, text=True, timeout=300, env=podman_env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "uid=1000(airbyte) gid=1000(airbyte) groups=1000(airbyte)\n"


@pytest.mark.image
def test_image_spec(podman_env):
    proc, messages = podman_run(podman_env, "spec")
    assert proc.returncode == 0, proc.stderr
    specs = of_type(messages, "SPEC")
    assert len(specs) == 1
    manifest = yaml.safe_load((ROOT / "source_smstools" / "manifest.yaml").read_text())
    connection = specs[0]["spec"]["connectionSpecification"]
    assert connection == manifest["spec"]["connection_specification"]
    assert {"client_id", "client_secret"} <= set(connection["required"])
    assert connection["properties"]["client_secret"]["airbyte_secret"] is True


@pytest.mark.image
def test_image_check_discover_read(podman_env, emulator, tmp_path):
    secrets = mountable(tmp_path / "secrets", {"config.json": cli.config(emulator)})
    data = mountable(tmp_path / "data", {"catalog.json": cli.catalog("incremental")})
    mounts = {secrets: "/secrets", data: "/data"}

    proc, messages = podman_run(podman_env, "check", "--config", "/secrets/config.json", mounts=mounts)
    assert proc.returncode == 0, proc.stderr
    assert of_type(messages, "CONNECTION_STATUS")[-1]["connectionStatus"]["status"] == "SUCCEEDED"

    proc, messages = podman_run(podman_env, "discover", "--config", "/secrets/config.json", mounts=mounts)
    assert proc.returncode == 0, proc.stderr
    streams = {s["name"]: s for s in of_type(messages, "CATALOG")[-1]["catalog"]["streams"]}
    conversation = streams["conversation"]
    schema = json.loads((ROOT / "source_smstools/schemas/conversation.json").read_text())
    assert conversation["json_schema"]["properties"].keys() == schema["properties"].keys()  # $refs come resolved
    assert conversation["supported_sync_modes"] == ["full_refresh", "incremental"]
    assert conversation["default_cursor_field"] == ["unixDatetime"]
    assert conversation["source_defined_primary_key"] == [["id"]]

    proc, messages = podman_run(
        podman_env, "read", "--config", "/secrets/config.json", "--catalog", "/data/catalog.json", mounts=mounts
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [m["record"]["data"] for m in of_type(messages, "RECORD")]
    expected = Counter(
        message_id("+" + phone, message) for phone in emulator.phones() for message in emulator.conversation(phone)
    )
    assert Counter(r["id"] for r in records) == expected
    assert of_type(messages, "STATE"), "an incremental read ends with its state"


@pytest.mark.image
def test_image_check_wrong_secret(podman_env, emulator, tmp_path):
    secrets = mountable(tmp_path / "secrets", {"config.json": cli.config(emulator, client_secret=WRONG_SECRET)})
    proc, messages = podman_run(
        podman_env, "check", "--config", "/secrets/config.json",
        mounts={secrets: "/secrets"}, secrets=(CLIENT_SECRET, WRONG_SECRET),
    )
    statuses = of_type(messages, "CONNECTION_STATUS")
    assert statuses, proc.stdout[-3000:]
    status = statuses[-1]["connectionStatus"]
    assert status["status"] == "FAILED"
    assert "refused the credentials" in status["message"], status["message"]
