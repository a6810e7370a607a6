"""The deployment files under deploy/, checked as far as this machine allows: it has no Docker
engine and no Kubernetes, so the manifests are validated against Kubernetes' own schemas
(kubernetes-validate, strict), and every file is checked against what mlgate really reads and
serves: setting names, routes, commands, ports, files. nginx.conf runs in test_replicas.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mlgate import settings
from mlgate.cli.main import app as cli

DEPLOY = Path(__file__).parents[2] / "deploy"
ROOT = DEPLOY.parent
KUBERNETES = "1.30.0"
# The settings mlgate reads (settings.py documents every one), plus what boto3 reads.
KNOWN = set(re.findall(r"\bMLGATE_[A-Z0-9_]+", settings.__doc__ or "")) | {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
}  # fmt: skip


def manifests() -> list[dict[str, Any]]:
    found = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def by_kind(kind: str) -> dict[str, Any]:
    [found] = [m for m in manifests() if m["kind"] == kind]
    return found


@pytest.mark.parametrize(
    "manifest", manifests(), ids=lambda m: f"{m['kind']}/{m['metadata']['name']}"
)
def test_each_manifest_is_valid_kubernetes(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_the_deployment_probes_routes_that_exist_and_takes_known_settings() -> None:
    from mlgate.api.routes import health

    routes = {route.path for route in health.router.routes}  # type: ignore[attr-defined]
    deployment = by_kind("Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in routes
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # drains on SIGTERM
    port = container["ports"][0]
    assert container["args"][-1] == str(port["containerPort"])
    assert by_kind("Service")["spec"]["ports"][0]["targetPort"] == port["name"]
    selector = by_kind("Service")["spec"]["selector"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    hpa = by_kind("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (hpa["kind"], hpa["name"]) == ("Deployment", deployment["metadata"]["name"])
    names = set(by_kind("Secret")["stringData"]) | set(by_kind("ConfigMap")["data"])
    assert names <= KNOWN, names - KNOWN
    assert {"MLGATE_SECRET_KEY", "MLGATE_DATABASE_URL", "MLGATE_REDIS_URL"} <= names


def test_the_migration_job_and_the_image_run_commands_that_exist() -> None:
    commands = {c.name or c.callback.__name__ for c in cli.registered_commands}  # type: ignore[union-attr]
    job = by_kind("Job")["spec"]["template"]["spec"]
    assert job["containers"][0]["args"] == ["init"] and "init" in commands
    assert job["restartPolicy"] == "Never"
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    entry = re.search(r'^ENTRYPOINT \["(\w+)"\]', dockerfile, re.M)
    command = re.search(r'^CMD \["(\w+)"', dockerfile, re.M)
    assert entry and entry.group(1) == "mlgate" and command and command.group(1) in commands
    # Everything the build copies exists; the runtime is not root; the constraints are used.
    for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.M):
        for source in line.split()[:-1]:
            assert (ROOT / source).exists(), source
    assert re.search(r"^USER (?!root|0\b)\S+", dockerfile, re.M)
    assert "-c constraints.txt" in dockerfile and "HEALTHCHECK" in dockerfile


def test_the_compose_file_wires_mlgate_to_its_services_with_known_settings() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "minio", "migrate", "mlgate"} <= set(services)
    server = services["mlgate"]
    env = server["environment"]
    assert set(env) <= KNOWN, set(env) - KNOWN
    assert env["MLGATE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["MLGATE_REDIS_URL"].startswith("redis://redis:")
    assert env["MLGATE_ARTIFACT_URL"].startswith("s3://")
    assert server["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["init"]
    for name in ("postgres", "redis", "minio"):
        assert "healthcheck" in services[name], name
    assert services["migrate"]["build"]["dockerfile"] == "deploy/Dockerfile"
