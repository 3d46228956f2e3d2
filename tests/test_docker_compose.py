"""docker-compose.yml cannot run here (no docker engine): check what can be checked without
one. It parses; its services, ports and client variables are the ones README.md's "Team
setup" promises; images are pinned; every setting is a `${VAR:-default}` listed with the same
default in .env.example; ports bind 127.0.0.1 unless BIND_ADDRESS says otherwise; and a real
`mlflow server` given the compose file's arguments and environment answers a request for the
host name the README configures (and refuses other names, as it refused every DNS name before
the setting existed)."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integrations.fixtures_mlflow import _stop, start_mlflow

REPO = Path(__file__).resolve().parents[1]
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_]\w*)(?P<sep>:-)?(?P<default>[^}]*)\}")
LONG_RUNNING = ("postgres", "minio", "mlflow")
TEAM_HOST = "mlflow.team.example"  # the name README's example serves


def _text() -> str:
    return (REPO / "docker-compose.yml").read_text()


def _interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation, as far as this file uses it: `${VAR:-default}`, `$$`."""

    def one(match: re.Match[str]) -> str:
        return env.get(match["name"]) or match["default"]

    return "$".join(VARIABLE.sub(one, part) for part in value.split("$$"))


def _resolve(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return _interpolate(node, env)
    if isinstance(node, list):
        return [_resolve(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _resolve(item, env) for key, item in node.items()}
    return node


def _compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file as `docker compose config` would see it with ``env`` (.env) set."""
    resolved: dict[str, Any] = _resolve(yaml.safe_load(_text()), env or {})
    return resolved


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    items = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return [text for item in items for text in _strings(item)]


def _defaults() -> dict[str, str]:
    """Every variable the compose file reads (comments aside), with its default."""
    found: dict[str, str] = {}
    values = "\n".join(_strings(yaml.safe_load(_text()))).replace("$$", "")
    assert not re.search(r"\$(?!\{)", values), "write ${NAME:-default}, or $$ for the container"
    for match in VARIABLE.finditer(values):
        assert match["sep"], f"${{{match['name']}}} has no default: write ${{NAME:-default}}"
        previous = found.setdefault(match["name"], match["default"])
        assert previous == match["default"], f"{match['name']} has two defaults"
    return found


def _env_example() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


def _team_setup() -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index("## Team setup")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


def _exports(section: str) -> dict[str, str]:
    return dict(re.findall(r"^export (\w+)=(\S+)$", section, flags=re.MULTILINE))


def _published(spec: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port."""
    out = []
    for port in spec.get("ports", []):
        address, host, container = port.rsplit(":", 2)
        out.append((address, int(host), int(container)))
    return out


def test_compose_parses_and_names_the_promised_services() -> None:
    services = _compose()["services"]
    assert {"postgres", "minio", "minio-init", "mlflow"} <= set(services)
    section = _team_setup()
    for name in services:
        assert name in section, f"service {name} is not mentioned in README Team setup"


def test_images_are_pinned_to_versions() -> None:
    for name, spec in _compose()["services"].items():
        image = spec["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"


def test_every_setting_has_a_default_listed_in_env_example() -> None:
    defaults = _defaults()
    assert _env_example() == defaults
    raw = yaml.safe_load(_text())["services"]
    for service, key in [
        ("postgres", "POSTGRES_PASSWORD"),
        ("minio", "MINIO_ROOT_PASSWORD"),
        ("minio-init", "MINIO_ROOT_PASSWORD"),
        ("postgres", "POSTGRES_USER"),
        ("minio", "MINIO_ROOT_USER"),
    ]:
        assert raw[service]["environment"][key].startswith("${"), f"{service} {key} is fixed"
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()  # passwords stay local


def test_ports_bind_127_0_0_1_unless_bind_address_opens_them() -> None:
    for name, spec in _compose()["services"].items():
        for address, _, _ in _published(spec):
            assert address == "127.0.0.1", f"{name} is published on {address}"
    opened = _compose({"BIND_ADDRESS": "0.0.0.0", "MLFLOW_PORT": "5050"})["services"]
    assert {a for spec in opened.values() for a, _, _ in _published(spec)} == {"0.0.0.0"}
    assert _published(opened["mlflow"]) == [("0.0.0.0", 5050, 5000)]
    assert "BIND_ADDRESS" in _team_setup()


def test_published_ports_match_the_readme() -> None:
    services = _compose()["services"]
    published = {name: {host for _, host, _ in _published(spec)} for name, spec in services.items()}
    assert published["postgres"] == {5432}
    assert published["minio"] == {9000, 9001}
    assert published["mlflow"] == {5000}
    section = _team_setup()
    for name, ports in published.items():
        for port in ports:
            assert str(port) in section, f"port {port} of {name} missing from README"


def test_services_restart_and_keep_their_data() -> None:
    compose = _compose()
    services = compose["services"]
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
        for volume in services[name]["volumes"]:
            assert volume.split(":")[0] in compose["volumes"], f"{name}: {volume} is not named"
    assert services["minio-init"]["restart"] == "no"  # a one-shot job
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"


def test_client_variables_match_the_services_credentials() -> None:
    services = _compose()["services"]
    env = _exports(_team_setup())
    pg = services["postgres"]["environment"]
    assert env["FEATURECACHE_CATALOG"] == (
        f"postgresql+psycopg://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@localhost:5432/{pg['POSTGRES_DB']}"
    )
    minio = services["minio"]["environment"]
    assert env["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    assert env["AWS_ENDPOINT_URL"] == "http://localhost:9000"
    bucket = env["FEATURECACHE_STORE"].removeprefix("s3://").split("/")[0]
    assert services["minio-init"]["environment"]["MINIO_BUCKET"] == bucket
    assert 'mc mb --ignore-existing "team/$MINIO_BUCKET"' in services["minio-init"]["entrypoint"][2]
    assert env["MLFLOW_TRACKING_URI"] == "http://localhost:5000"
    assert "--port=5000" in services["mlflow"]["command"]


def _readme_allowed_hosts() -> str:
    """The MLFLOW_SERVER_ALLOWED_HOSTS line of README's "Serving a host name"."""
    found = re.findall(r"^MLFLOW_SERVER_ALLOWED_HOSTS=(\S+)$", _team_setup(), flags=re.MULTILINE)
    assert len(found) == 1, "README Team setup shows one MLFLOW_SERVER_ALLOWED_HOSTS= line"
    assert TEAM_HOST in found[0]
    return str(found[0])


def _status(url: str, host: str) -> tuple[int, str]:
    """GET an API endpoint of ``url`` with ``host`` as the Host header."""
    address, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(address, int(port), timeout=30)
    try:
        path = "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def _mlflow_as_composed(env: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The mlflow service's server options and environment, resolved with ``env``; where
    the container binds and keeps its files is the test's business (127.0.0.1, a temp dir)."""
    spec = _compose(env)["services"]["mlflow"]
    command = spec["command"]
    assert command[:2] == ["mlflow", "server"]
    placed = ("--host=", "--port=", "--backend-store-uri=", "--artifacts-destination=")
    args = [arg for arg in command[2:] if not arg.startswith(placed)]
    return args, {key: str(value) for key, value in spec["environment"].items()}


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server
@pytest.mark.parametrize("configured", [True, False], ids=["readme-host-name", "defaults"])
def test_mlflow_answers_the_configured_host_name(
    configured: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {"MLFLOW_SERVER_ALLOWED_HOSTS": _readme_allowed_hosts()} if configured else {}
    args, environment = _mlflow_as_composed(env)
    proc, url = start_mlflow(tmp_path / "mlflow", request, args=args, env=environment)
    try:
        port = url.rsplit(":", 1)[1]
        # Published ports, proxies and browsers send the name with or without a port.
        for host in (f"{TEAM_HOST}:{port}", TEAM_HOST):
            status, body = _status(url, host)
            if configured:
                assert status == 200, (host, body)
            else:  # what the issue saw: every DNS name refused
                assert status == 403 and "Invalid Host header" in body, (host, status, body)
        for host in (f"localhost:{port}", f"127.0.0.1:{port}"):  # local clients keep working
            assert _status(url, host)[0] == 200, host
        status, body = _status(url, "attacker.example")
        assert status == 403 and "Invalid Host header" in body

        # The compose healthcheck, run against this server.
        check = _compose(env)["services"]["mlflow"]["healthcheck"]["test"]
        assert check[:3] == ["CMD", "python", "-c"]
        code = check[3].replace("127.0.0.1:5000", f"127.0.0.1:{port}")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
    finally:
        _stop(proc)
