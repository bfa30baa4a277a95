"""deploy/k8s/flink: the pipeline on a Flink session cluster of the Flink Kubernetes Operator.

Rendered as Kustomize renders it; the plain Kubernetes objects and the FlinkDeployment's pod
templates checked against Kubernetes 1.32's schemas in strict mode (kubernetes-validate bundles
them), the FlinkDeployment's spec against the operator's CRD schema (crd/, taken from the operator's
release), and the pieces against each other and against what the CLI, the config loader and Beam
accept. No cluster runs here."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import apache_beam
import jsonschema
import kubernetes_validate
import pytest
import yaml

from pipeline.runners import FLINK_VERSION, runner_options
from wirestream.cli import build_parser
from wirestream.config import ENV_PREFIX, load_config

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "k8s" / "flink"
CRD_SCHEMA = BASE / "crd" / "flinkdeployment-spec.v1beta1.json"
KUBERNETES_VERSION = "1.32.0"
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "labels", "images"}
FLINK_MAIN_CONTAINER = "flink-main-container"


def _pod_templates(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] in ("Deployment", "Job"):
        return [doc["spec"]["template"]]
    if doc["kind"] == "CronJob":
        return [doc["spec"]["jobTemplate"]["spec"]["template"]]
    if doc["kind"] == "FlinkDeployment":
        spec = doc["spec"]
        found = [spec.get("podTemplate")]
        found += [spec[part].get("podTemplate") for part in ("jobManager", "taskManager")]
        return [t for t in found if t]
    return []


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c
        for t in _pod_templates(doc)
        for key in ("initContainers", "containers")
        for c in t["spec"].get(key, [])
    ]


def _labelled_templates(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The templates Kustomize's labels reach with includeTemplates: those of the built-in kinds
    (a custom resource's pod templates are not among them)."""
    if doc["kind"] == "CronJob":
        return [doc["spec"]["jobTemplate"], *_pod_templates(doc)]
    return [] if doc["kind"] == "FlinkDeployment" else _pod_templates(doc)


def render(base: Path) -> list[dict[str, Any]]:
    """What `kubectl kustomize base` prints, for the part of Kustomize this folder uses: its
    resources, labels on objects and on built-in kinds' templates, and image tags (which Kustomize
    also sets in the FlinkDeployment's pod templates)."""
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text("utf-8"))
    unknown = set(kustomization) - KUSTOMIZATION_KEYS
    assert not unknown, f"kustomization.yaml uses {sorted(unknown)}, which this renderer does not apply"
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((base / resource).read_text("utf-8")) if d)
    for entry in kustomization.get("labels", []):
        assert not entry.get("includeSelectors"), "includeSelectors is not applied by this renderer"
        for doc in docs:
            doc.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
            if entry.get("includeTemplates"):
                for template in _labelled_templates(doc):
                    template.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
    for image in kustomization.get("images", []):
        for doc in docs:
            for container in _containers(doc):
                if (
                    "image" in container
                    and re.split(r"[:@]", container["image"], maxsplit=1)[0] == image["name"]
                ):
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return docs


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(BASE)


def _one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return found


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server applies it to a create with strict field validation: an
    object with declared properties takes no others (unless it preserves unknown fields)."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        closed = not schema.get("x-kubernetes-preserve-unknown-fields")
        if "properties" in schema and "additionalProperties" not in schema and closed:
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(value) for value in schema]
    return schema


def _crd() -> dict[str, Any]:
    return dict(json.loads(CRD_SCHEMA.read_text("utf-8")))


def _validate_flink_deployment(doc: dict[str, Any]) -> None:
    crd = _crd()
    assert doc["apiVersion"] == f"{crd['group']}/{crd['version']}"
    assert doc["kind"] == crd["kind"]
    jsonschema.validate(doc["spec"], _strict(crd["spec"]))
    # The CRD leaves pod templates open; they are Kubernetes PodTemplateSpecs, checked as such.
    for template in _pod_templates(doc):
        wrapped = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template}
        kubernetes_validate.validate(wrapped, KUBERNETES_VERSION, strict=True)


@pytest.fixture
def config_file(docs: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    path = tmp_path / "wirestream.yaml"
    path.write_text(_one(docs, "ConfigMap", "wirestream-flink-config")["data"]["wirestream.yaml"], "utf-8")
    return path


def test_every_plain_document_is_valid_for_the_kubernetes_api_in_strict_mode(
    docs: list[dict[str, Any]],
) -> None:
    kinds = []
    for doc in docs:
        if doc["kind"] != "FlinkDeployment":
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        kinds.append((doc["kind"], doc["metadata"]["name"]))
    assert sorted(kinds) == [
        ("ConfigMap", "wirestream-flink-config"),
        ("CronJob", "wirestream-flink-run"),
        ("Deployment", "wirestream-beam-job-server"),
        ("FlinkDeployment", "wirestream-flink"),
        ("PersistentVolumeClaim", "wirestream-flink-staging"),
        ("Service", "wirestream-beam-job-server"),
    ]


def test_the_flink_deployment_is_valid_for_the_operators_crd(docs: list[dict[str, Any]]) -> None:
    _validate_flink_deployment(_one(docs, "FlinkDeployment"))


@pytest.mark.parametrize(
    "path, value",
    [
        (["spec", "taskManager", "replica"], 2),
        (["spec", "flinkVersion"], "v1_9"),
        (["spec", "mode"], "session"),
        (["spec", "taskManager", "resource", "cpu"], "one"),
        (["spec", "taskManager", "podTemplate", "spec", "containers", 0, "resources", "limit"], {"cpu": "1"}),
    ],
    ids=["misspelt-replicas", "unknown-flink-version", "unknown-mode", "cpu-not-a-number", "misspelt-limits"],
)
def test_the_check_reports_a_wrong_field(docs: list[dict[str, Any]], path: list[Any], value: Any) -> None:
    wrong = copy.deepcopy(_one(docs, "FlinkDeployment"))
    node = wrong
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        _validate_flink_deployment(wrong)


def test_the_flink_and_beam_versions_are_the_pipelines(docs: list[dict[str, Any]]) -> None:
    flink = _one(docs, "FlinkDeployment")
    assert flink["spec"]["image"] == f"flink:{FLINK_VERSION}"
    assert flink["spec"]["flinkVersion"] == "v" + FLINK_VERSION.replace(".", "_")
    (job_server,) = _containers(_one(docs, "Deployment", "wirestream-beam-job-server"))
    # The job server must be the Beam release of the SDK that submits to it.
    assert job_server["image"] == f"apache/beam_flink{FLINK_VERSION}_job_server:{apache_beam.__version__}"
    version = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    wirestream_images = {
        c["image"] for d in docs for c in _containers(d) if c.get("image", "").startswith("wirestream")
    }
    assert wirestream_images == {f"wirestream:{version}"}


def _flag(argv: list[str], name: str) -> str:
    (value,) = [arg.split("=", 1)[1] for arg in argv if arg.startswith(f"--{name}=")]
    return value


def test_the_runs_settings_name_the_cluster_the_manifests_build(
    docs: list[dict[str, Any]], config_file: Path
) -> None:
    config = load_config(config_file)
    assert config.runner == "flink-cluster"
    flink = _one(docs, "FlinkDeployment")
    slots = int(flink["spec"]["flinkConfiguration"]["taskmanager.numberOfTaskSlots"])
    replicas = flink["spec"]["taskManager"]["replicas"]
    assert (config.flink_taskmanagers, config.flink_slots) == (replicas, slots)
    assert config.flink_parallelism == replicas * slots
    # The job endpoint: the job server's Service, on the port the job server listens on.
    service = _one(docs, "Service", "wirestream-beam-job-server")
    deployment = _one(docs, "Deployment", "wirestream-beam-job-server")
    assert config.flink_host == service["metadata"]["name"]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (container,) = _containers(deployment)
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    (job_port,) = [p for p in service["spec"]["ports"] if p["port"] == config.flink_job_port]
    assert container_ports[job_port["targetPort"]] == int(_flag(container["args"], "job-port"))
    (artifact_port,) = [p for p in service["spec"]["ports"] if p["name"] == "artifact"]
    assert container_ports[artifact_port["targetPort"]] == int(_flag(container["args"], "artifact-port"))
    # The job server submits to the REST service the operator makes for the FlinkDeployment.
    rest = f"{flink['metadata']['name']}-rest:{config.flink_port}"
    assert _flag(container["args"], "flink-master") == rest
    # It reports its artifact endpoint as --job-host: the pod's address, which the client reaches.
    assert _flag(container["args"], "job-host") == "$(POD_IP)"
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"


def test_the_runs_beam_options_point_at_the_job_server_and_the_sidecars(
    docs: list[dict[str, Any]], config_file: Path
) -> None:
    """The options the run gives Beam, from the ConfigMap's file: the job server's Service, each
    TaskManager's own worker pool, the cluster's slots."""
    options = runner_options(load_config(config_file), "flink-cluster")
    service = _one(docs, "Service", "wirestream-beam-job-server")
    (job_port,) = [p["port"] for p in service["spec"]["ports"] if p["name"] == "job"]
    assert f"--job_endpoint={service['metadata']['name']}:{job_port}" in options
    assert "--environment_type=EXTERNAL" in options
    flink = _one(docs, "FlinkDeployment")
    containers = flink["spec"]["taskManager"]["podTemplate"]["spec"]["containers"]
    (pool,) = [c for c in containers if c["name"] != FLINK_MAIN_CONTAINER]
    # localhost: the TaskManager and its sidecar share the pod's network.
    assert f"--environment_config=localhost:{_flag(pool['command'], 'service_port')}" in options
    slots = int(flink["spec"]["flinkConfiguration"]["taskmanager.numberOfTaskSlots"])
    assert f"--parallelism={flink['spec']['taskManager']['replicas'] * slots}" in options


def test_every_taskmanager_has_the_worker_pool_the_run_names(
    docs: list[dict[str, Any]], config_file: Path
) -> None:
    config = load_config(config_file)
    flink = _one(docs, "FlinkDeployment")
    containers = flink["spec"]["taskManager"]["podTemplate"]["spec"]["containers"]
    (pool,) = [c for c in containers if c["name"] != FLINK_MAIN_CONTAINER]
    python, dash_m, module, *args = pool["command"]
    assert (python, dash_m) == ("python", "-m")
    assert importlib.util.find_spec(module) is not None, module
    assert module == "apache_beam.runners.worker.worker_pool_main"
    assert int(_flag(args, "service_port")) == config.flink_worker_pool_port
    assert {p["containerPort"] for p in pool["ports"]} == {config.flink_worker_pool_port}
    # The JobManager runs no Python: the pool is a TaskManager's sidecar only.
    assert not flink["spec"]["jobManager"].get("podTemplate")
    assert [c["name"] for c in flink["spec"]["podTemplate"]["spec"]["containers"]] == [FLINK_MAIN_CONTAINER]


def test_the_cron_job_runs_a_real_wirestream_command_with_the_mounted_config(
    docs: list[dict[str, Any]], config_file: Path
) -> None:
    cronjob = _one(docs, "CronJob")
    (container,) = _containers(cronjob)
    args = build_parser().parse_args(container["args"])
    assert (args.command, args.runner, args.continuous) == ("run", "flink-cluster", False)
    template = _pod_templates(cronjob)[0]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == Path(args.config).parent]
    assert volumes[mount["name"]]["configMap"]["name"] == "wirestream-flink-config"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert 0 < cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] <= 24 * 3600
    # Writable places the config names lie on volumes (the root filesystem is read-only).
    config = load_config(config_file)
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    for path in ("/tmp", config.output, config.cache_dir, config.state_dir):
        assert path is not None and any(Path(path).is_relative_to(m) for m in writable), path


def _volume_at(template: dict[str, Any], container: dict[str, Any], path: str) -> dict[str, Any]:
    """The volume a container has ``path`` on (the deepest writable mount holding it)."""
    mounts = [
        m
        for m in container.get("volumeMounts", [])
        if Path(path).is_relative_to(m["mountPath"]) and not m.get("readOnly")
    ]
    assert mounts, f"{container['name']}: nothing writable mounted at {path}"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    (volume,) = [v for v in template["spec"]["volumes"] if v["name"] == mount["name"]]
    return dict(volume)


def test_the_workers_write_into_the_staging_folder_the_run_commits_from(
    docs: list[dict[str, Any]], config_file: Path
) -> None:
    """The workers' files reach the run that commits them: the config's output folder is, at the
    same path, one ReadWriteMany claim in the run's pod and in every TaskManager's sidecar."""
    config = load_config(config_file)
    assert config.output is not None
    cronjob = _one(docs, "CronJob")
    (run,) = _containers(cronjob)
    run_volume = _volume_at(_pod_templates(cronjob)[0], run, config.output)
    flink = _one(docs, "FlinkDeployment")
    template = flink["spec"]["taskManager"]["podTemplate"]
    (pool,) = [c for c in template["spec"]["containers"] if c["name"] != FLINK_MAIN_CONTAINER]
    pool_volume = _volume_at(template, pool, config.output)
    claim = run_volume["persistentVolumeClaim"]["claimName"]
    assert pool_volume["persistentVolumeClaim"]["claimName"] == claim
    assert _one(docs, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"]
    # Both write as the wirestream image's user, into volumes owned by its group.
    assert (
        pool["securityContext"]["runAsUser"]
        == _pod_templates(cronjob)[0]["spec"]["securityContext"]["runAsUser"]
    )
    assert (
        flink["spec"]["podTemplate"]["spec"]["securityContext"]["fsGroup"]
        == (_pod_templates(cronjob)[0]["spec"]["securityContext"]["fsGroup"])
    )


def _quantity(text: str | int) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    assert match, f"not a quantity: {text!r}"
    number, unit = match.groups()
    return float(number) * (units[unit] if unit else 1)


def test_containers_have_limits_no_privileges_and_secrets_only_from_the_secret(
    docs: list[dict[str, Any]],
) -> None:
    seen = 0
    for doc in docs:
        for template in _pod_templates(doc):
            pod = template["spec"]
            if "securityContext" in pod:
                assert pod["securityContext"]["runAsNonRoot"] is True
                assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
                assert pod["automountServiceAccountToken"] is False
                assert pod["enableServiceLinks"] is False
            for container in pod["containers"]:
                where = f"{doc['metadata']['name']}/{container['name']}"
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, where
                assert context["capabilities"] == {"drop": ["ALL"]}, where
                for variable in container.get("env", []):
                    if re.search(r"PASSWORD|SECRET|KEY_ID|TOKEN", variable["name"]):
                        assert variable["valueFrom"]["secretKeyRef"]["name"] == "wirestream-credentials", (
                            where
                        )
                if container["name"] == FLINK_MAIN_CONTAINER:
                    continue  # sized by the FlinkDeployment's jobManager/taskManager resource
                seen += 1
                assert context["readOnlyRootFilesystem"] is True, where
                for name in ("cpu", "memory"):
                    request = container["resources"]["requests"][name]
                    limit = container["resources"]["limits"][name]
                    assert 0 < _quantity(request) <= _quantity(limit), (where, name)
    assert seen == 3  # the job server, the worker pool, the run
