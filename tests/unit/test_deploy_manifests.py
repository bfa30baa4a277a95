"""The Kubernetes base in deploy/k8s: rendered as Kustomize renders it, each document checked against
the Kubernetes API's schemas (kubernetes-validate bundles them, so this runs offline) in strict mode,
and against what the image, the CLI and the config loader accept."""

from __future__ import annotations

import copy
import os
import re
import shlex
import subprocess
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from connectors.feeds import FeedSettings, FeedSpec
from wirestream.cli import build_parser
from wirestream.config import ENV_PREFIX, SECRET_KEYS, load_config

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "k8s"
DOCKERFILE = REPO / "deploy" / "container" / "Dockerfile"
# The releases the base is validated against: 1.32 (what the base is meant to run on at the oldest;
# its newest field, CronJob.spec.timeZone, is GA since 1.27) and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.32.0", "1.37.0")
KUBERNETES_VERSION = KUBERNETES_VERSIONS[0]
# What `render` applies; a kustomization using anything else fails the test instead of rendering
# something Kustomize would not.
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "labels", "images"}
AWS_SECRETS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
# Kustomize's default ("legacy") output order: these kinds first, in this order, then any other.
KIND_ORDER = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
]


def _pod_templates(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [doc["spec"]["template"]]
    if doc["kind"] == "CronJob":
        return [doc["spec"]["jobTemplate"]["spec"]["template"]]
    return []


def render(base: Path) -> list[dict[str, Any]]:
    """The documents `kubectl kustomize base` prints, for the subset of Kustomize this base uses:
    its resources (in Kustomize's order: by kind, then name), labels (on templates too with
    includeTemplates) and image tags."""
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text("utf-8"))
    unknown = set(kustomization) - KUSTOMIZATION_KEYS
    assert not unknown, f"kustomization.yaml uses {sorted(unknown)}, which this renderer does not apply"
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((base / resource).read_text("utf-8")) if d)
    for entry in kustomization.get("labels", []):
        pairs = entry["pairs"]
        for doc in docs:
            doc.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
            if entry.get("includeSelectors"):
                raise AssertionError("includeSelectors is not applied by this renderer")
            if entry.get("includeTemplates"):
                if doc["kind"] == "CronJob":
                    job = doc["spec"]["jobTemplate"]
                    job.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
                for template in _pod_templates(doc):
                    template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    for image in kustomization.get("images", []):
        for doc in docs:
            for container in _containers(doc):
                name = re.split(r"[:@]", container["image"], maxsplit=1)[0]
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image['newTag']}"
    kinds = {kind: i for i, kind in enumerate(KIND_ORDER)}
    return sorted(docs, key=lambda d: (kinds.get(d["kind"], len(kinds)), d["kind"], d["metadata"]["name"]))


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        container
        for template in _pod_templates(doc)
        for key in ("initContainers", "containers")
        for container in template["spec"].get(key, [])
    ]


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(BASE)


def _workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [doc for doc in docs if _pod_templates(doc)]


def _quantity(text: str | int) -> float:
    """A Kubernetes resource quantity (250m, 2, 1536Mi, 4Gi) as a number."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    assert match, f"not a quantity: {text!r}"
    number, unit = match.groups()
    return float(number) * (units[unit] if unit else 1)


def _config_text(docs: list[dict[str, Any]]) -> str:
    (config_map,) = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "wirestream-config"
    ]
    return str(config_map["data"]["wirestream.yaml"])


@pytest.fixture
def config_file(docs: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The ConfigMap's wirestream.yaml as a file, read with none of the caller's WIRESTREAM_*."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    path = tmp_path / "wirestream.yaml"
    path.write_text(_config_text(docs), "utf-8")
    return path


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_document_is_valid_for_the_kubernetes_api_in_strict_mode(
    docs: list[dict[str, Any]], version: str
) -> None:
    kinds = []
    for doc in docs:
        # Raises ValidationError on a wrong or unknown field, SchemaNotFoundError on an unknown kind.
        assert kubernetes_validate.validate(doc, version, strict=True) == version.rsplit(".", 1)[0]
        kinds.append((doc["kind"], doc["metadata"]["name"]))
    assert sorted(kinds) == [
        ("ConfigMap", "wirestream-config"),
        ("CronJob", "wirestream-backfill"),
        ("Deployment", "wirestream-connectors"),
        ("Deployment", "wirestream-pipeline"),
        ("PersistentVolumeClaim", "wirestream-backfill-staging"),
        ("PersistentVolumeClaim", "wirestream-connector-state"),
        ("PersistentVolumeClaim", "wirestream-pipeline-staging"),
    ]


@pytest.mark.parametrize(
    "path, value, reported",
    [
        # A misspelt field: only strict mode (no additional properties) catches it.
        (["spec", "template", "spec", "containers", 0, "resources", "limit"], {"cpu": "1"}, "limit"),
        (["spec", "template", "spec", "containers", 0, "livenessProbe", "httpGet", "paht"], "/x", "paht"),
        (["spec", "replicas"], "one", "replicas"),
        (["spec", "template", "spec", "securityContext", "runAsNonRoot"], "yes", "runAsNonRoot"),
    ],
    ids=["misspelt-limits", "misspelt-probe-path", "replicas-not-a-number", "non-boolean-non-root"],
)
def test_the_validator_reports_a_wrong_field(
    docs: list[dict[str, Any]], path: list[Any], value: Any, reported: str
) -> None:
    (pipeline,) = [d for d in docs if d["metadata"]["name"] == "wirestream-pipeline"]
    wrong = copy.deepcopy(pipeline)
    node = wrong
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError) as caught:
        kubernetes_validate.validate(wrong, KUBERNETES_VERSION, strict=True)
    assert reported in f"{'.'.join(map(str, caught.value.path))}: {caught.value.message}"


def test_a_misspelt_field_passes_without_strict_mode(docs: list[dict[str, Any]]) -> None:
    """Why the base is checked in strict mode: the plain schemas allow unknown fields."""
    (pipeline,) = [d for d in docs if d["metadata"]["name"] == "wirestream-pipeline"]
    wrong = copy.deepcopy(pipeline)
    wrong["spec"]["template"]["spec"]["containers"][0]["resources"]["limit"] = {"cpu": "1"}
    kubernetes_validate.validate(wrong, KUBERNETES_VERSION, strict=False)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES_VERSION, strict=True)


def test_every_container_has_limits_and_a_restrictive_security_context(docs: list[dict[str, Any]]) -> None:
    workloads = _workloads(docs)
    assert len(workloads) == 3
    for doc in workloads:
        for template in _pod_templates(doc):
            pod = template["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
            assert pod["securityContext"]["runAsUser"] > 0
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert pod["automountServiceAccountToken"] is False
            assert pod["enableServiceLinks"] is False
            assert not pod.get("hostNetwork") and not pod.get("hostPID")
            for container in pod["containers"]:
                where = f"{doc['metadata']['name']}/{container['name']}"
                resources = container["resources"]
                for name in ("cpu", "memory"):
                    request, limit = resources["requests"][name], resources["limits"][name]
                    assert 0 < _quantity(request) <= _quantity(limit), (where, name, request, limit)
                context = container["securityContext"]
                assert context["runAsNonRoot"] is True, where
                assert context["allowPrivilegeEscalation"] is False, where
                assert context["readOnlyRootFilesystem"] is True, where
                assert context["capabilities"] == {"drop": ["ALL"]}, where
                assert not context.get("privileged"), where


def _volume_of(path: str, container: dict[str, Any], volumes: dict[str, Any]) -> dict[str, Any] | None:
    """The writable volume ``path`` lies on (the innermost mount), or None."""
    mounts = [
        m
        for m in container["volumeMounts"]
        if not m.get("readOnly") and "configMap" not in volumes[m["name"]]
        if Path(path).is_relative_to(m["mountPath"])
    ]
    if not mounts:
        return None
    innermost = max(mounts, key=lambda m: len(m["mountPath"]))
    volume: dict[str, Any] = volumes[innermost["name"]]
    return volume


def test_the_writable_places_the_config_names_are_volumes(
    docs: list[dict[str, Any]], config_file: Path
) -> None:
    """On a read-only root filesystem, scratch, state, staging and cache must each lie on a volume;
    what must outlive the pod (the connectors' state, the writers' staging with its commit markers)
    on a PersistentVolumeClaim."""
    config = load_config(config_file)
    assert config.output is not None
    for doc in _workloads(docs):
        name = doc["metadata"]["name"]
        for template in _pod_templates(doc):
            volumes = {v["name"]: v for v in template["spec"]["volumes"]}
            (container,) = template["spec"]["containers"]
            for scratch in ("/tmp", config.cache_dir):
                volume = _volume_of(scratch, container, volumes)
                assert volume is not None and "emptyDir" in volume, (name, scratch)
            kept = config.state_dir if name == "wirestream-connectors" else config.output
            volume = _volume_of(kept, container, volumes)
            assert volume is not None and "persistentVolumeClaim" in volume, (name, kept)
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for doc in _workloads(docs)
        for template in _pod_templates(doc)
        for v in template["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    assert len(claims) == 3, "each writer its own claim: they are ReadWriteOnce"


def _metrics_port(argv: list[str]) -> int:
    return int(argv[argv.index("--metrics-port") + 1])


def test_long_running_containers_are_probed_on_their_metrics_endpoint(docs: list[dict[str, Any]]) -> None:
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {"wirestream-connectors", "wirestream-pipeline"}
    for doc in deployments:
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == _metrics_port(container["args"])
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            check = container[probe]["httpGet"]
            assert check["path"] == "/metrics", (doc["metadata"]["name"], probe)
            assert check["port"] in ("metrics", ports["metrics"]), (doc["metadata"]["name"], probe)


def test_jobs_end_by_a_deadline(docs: list[dict[str, Any]]) -> None:
    (cronjob,) = [d for d in docs if d["kind"] == "CronJob"]
    job = cronjob["spec"]["jobTemplate"]["spec"]
    assert 0 < job["activeDeadlineSeconds"] <= 24 * 3600
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


def test_secrets_come_only_from_a_secret(docs: list[dict[str, Any]], config_file: Path) -> None:
    assert not [d for d in docs if d["kind"] == "Secret"], "the base ships no Secret (an overlay creates it)"
    secret_env = {ENV_PREFIX + key.upper() for key in SECRET_KEYS} | AWS_SECRETS
    referenced = set()
    for doc in _workloads(docs):
        for container in _containers(doc):
            for variable in container.get("env", []):
                if variable["name"] in secret_env or re.search(r"PASSWORD|SECRET|TOKEN", variable["name"]):
                    assert "value" not in variable, variable["name"]
                    ref = variable["valueFrom"]["secretKeyRef"]
                    referenced.add((ref["name"], ref["key"]))
            assert not container.get("envFrom"), "no environment from a ConfigMap or a whole Secret"
    assert referenced == {
        ("wirestream-credentials", "sasl-password"),
        ("wirestream-credentials", "aws-access-key-id"),
        ("wirestream-credentials", "aws-secret-access-key"),
    }
    # The loader refuses a secret key in a config file, so loading it proves none is there.
    load_config(config_file)


def test_the_config_map_is_a_config_wirestream_reads(
    docs: list[dict[str, Any]], config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(config_file)
    assert config.metrics_address == "0.0.0.0"  # probes come from the node, to the pod's address
    assert config.catalog_uri and config.catalog_warehouse and config.catalog_warehouse.startswith("s3://")
    specs = [FeedSpec.from_config(feed) for feed in config.feeds]
    assert specs and all(spec.url.startswith("https://") for spec in specs)
    FeedSettings.from_config(config)
    monkeypatch.setenv("WIRESTREAM_SASL_PASSWORD", "from-the-secret")
    options = load_config(config_file).kafka_client_options()
    assert options["sasl_plain_password"] == "from-the-secret"
    assert len(options["bootstrap_servers"]) >= 1
    # Every container reads that file where the ConfigMap is mounted.
    for doc in _workloads(docs):
        for template in _pod_templates(doc):
            volumes = {v["name"]: v for v in template["spec"]["volumes"]}
            for container in template["spec"]["containers"]:
                argv = _argv(container)
                config_path = Path(argv[argv.index("--config") + 1])
                (mount,) = [
                    m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent
                ]
                assert volumes[mount["name"]]["configMap"]["name"] == "wirestream-config"


def _argv(container: dict[str, Any]) -> list[str]:
    """The wirestream arguments a container runs: its args after the image's entrypoint, or the
    wirestream command line of its shell script."""
    if "command" not in container:
        return list(container["args"])
    assert container["command"] == ["/bin/sh", "-c"]
    words = shlex.split(container["args"][0])
    return words[words.index("wirestream") + 1 :]


def _shell_argv(container: dict[str, Any], bin_dir: Path) -> list[str]:
    """The arguments the container's shell script passes to wirestream, expansions done by a real
    shell, with a wirestream on PATH that prints what it was given."""
    fake = bin_dir / "wirestream"
    fake.write_text("#!/bin/sh\nprintf '%s\\0' \"$@\"\n", "utf-8")
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LC_ALL": "C"}
    out = subprocess.run(
        [*container["command"], *container["args"]], env=env, capture_output=True, check=True
    ).stdout
    return out.decode("utf-8").split("\0")[:-1]


def test_containers_run_real_wirestream_commands(docs: list[dict[str, Any]], tmp_path: Path) -> None:
    commands = {}
    for doc in _workloads(docs):
        (container,) = _containers(doc)
        argv = _shell_argv(container, tmp_path) if "command" in container else container["args"]
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:
            pytest.fail(
                f"{doc['metadata']['name']}: `wirestream {' '.join(argv)}` is refused (exit {exc.code})"
            )
        commands[doc["metadata"]["name"]] = args
    assert commands["wirestream-connectors"].command == "connect"
    assert commands["wirestream-connectors"].kind == "feeds"
    assert commands["wirestream-connectors"].metrics_port == 9464
    assert commands["wirestream-pipeline"].command == "run"
    assert commands["wirestream-pipeline"].continuous is True
    assert commands["wirestream-pipeline"].metrics_port == 9465
    backfill = commands["wirestream-backfill"]
    assert backfill.command == "backfill"
    # The shell computed yesterday and today (UTC); it may run across midnight, hence either day.
    today = {datetime.now(UTC).date(), (datetime.now(UTC) - timedelta(minutes=1)).date()}
    assert backfill.until.date() in today
    assert backfill.since.date() == backfill.until.date() - timedelta(days=1)


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text("utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_is_the_one_the_dockerfile_builds(docs: list[dict[str, Any]]) -> None:
    """The manifests run the image's entrypoint (wirestream) as the image's user, tagged with the
    project's version."""
    version = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    instructions = _dockerfile_instructions()
    final_stage = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    runtime = instructions[final_stage:]
    (entrypoint,) = [yaml.safe_load(arg) for op, arg in runtime if op == "ENTRYPOINT"]
    (user,) = [arg for op, arg in runtime if op == "USER"]
    uid, gid = (int(part) for part in user.split(":"))
    assert entrypoint == ["wirestream"]
    for doc in _workloads(docs):
        for template in _pod_templates(doc):
            context = template["spec"]["securityContext"]
            assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (uid, gid, gid)
            for container in template["spec"]["containers"]:
                assert container["image"] == f"wirestream:{version}", doc["metadata"]["name"]
                if "command" in container:  # a shell that execs the entrypoint's program
                    assert re.search(r"\bexec wirestream\b", container["args"][0])
