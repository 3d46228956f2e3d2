"""docker-compose.yml cannot run here (no docker engine): check that it parses and that its
services, ports and client variables are the ones README.md's "Team setup" promises."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _team_setup() -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index("## Team setup")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


def _exports(section: str) -> dict[str, str]:
    return dict(re.findall(r"^export (\w+)=(\S+)$", section, flags=re.MULTILINE))


def test_compose_parses_and_names_the_promised_services():
    services = _compose()["services"]
    assert {"postgres", "minio", "minio-init", "mlflow"} <= set(services)
    section = _team_setup()
    for name in services:
        assert name in section, f"service {name} is not mentioned in README Team setup"


def test_published_ports_match_the_readme():
    services = _compose()["services"]
    published = {
        name: {int(p.split(":")[0]) for p in spec.get("ports", [])}
        for name, spec in services.items()
    }
    assert published["postgres"] == {5432}
    assert published["minio"] == {9000, 9001}
    assert published["mlflow"] == {5000}
    section = _team_setup()
    for name, ports in published.items():
        for port in ports:
            assert str(port) in section, f"port {port} of {name} missing from README"


def test_client_variables_match_the_services_credentials():
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
    assert f"mb --ignore-existing team/{bucket}" in services["minio-init"]["entrypoint"]
    assert env["MLFLOW_TRACKING_URI"] == "http://localhost:5000"
    assert "--port 5000" in services["mlflow"]["command"]
