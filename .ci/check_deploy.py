"""What the schema validators cannot see: the deployment files agree with each other and with
the code, and keep the rules the platform depends on.

usage: check_deploy.py COMPOSE_JSON K8S_YAML EXTRA_SUBGRAPH_YAML
(COMPOSE_JSON: `docker compose config --format json`; the YAML files: rendered manifests)
"""
import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def subgraphs_of_the_code():
    return sorted(p.stem for p in (ROOT / "schema").glob("*.graphql") if p.stem != "supergraph")


def dockerfile():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    check(len(stages) >= 2, "Dockerfile: multi-stage (a build stage and a runtime stage)")
    final = text[text.rfind("\nFROM"):]
    users = re.findall(r"^USER\s+(\S+)", final, re.M)
    check(users and users[-1].split(":")[0] not in ("0", "root"), "Dockerfile: the runtime runs as non-root")
    check(re.search(r'^ENTRYPOINT \["/usr/local/bin/pyairtable"\]', final, re.M), "Dockerfile: ENTRYPOINT is pyairtable")
    check("cargo build --release --locked" in text, "Dockerfile: release build from Cargo.lock")
    check("cargo chef cook" in text, "Dockerfile: dependencies built in their own cached layer")
    check("HEALTHCHECK" in final, "Dockerfile: a HEALTHCHECK")


def compose(path, subgraphs):
    services = json.loads(pathlib.Path(path).read_text())["services"]
    ours = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("pyairtable")}
    check(sorted(n for n, s in ours.items() if s.get("command", [""])[0] == "subgraph") == subgraphs,
          f"compose: one service per subgraph of schema/ ({subgraphs})")
    for name, service in ours.items():
        published = service.get("ports") or []
        check(not published or name == "router", f"compose: {name} must not publish ports (only the router)")
        depends = service.get("depends_on", {})
        if name != "migrate":
            check(depends.get("migrate", {}).get("condition") == "service_completed_successfully"
                  or name == "router", f"compose: {name} waits for the migrations")
            check(service.get("healthcheck", {}).get("test", [None])[-1] == "healthcheck",
                  f"compose: {name} has the /readyz health check")
        if name not in ("migrate", "router", "permissions"):
            check(depends.get("permissions", {}).get("condition") == "service_healthy",
                  f"compose: {name} starts after permissions")
        check(service.get("read_only") and "ALL" in service.get("cap_drop", []), f"compose: {name} hardened")
    store = ours.get("files", {})
    if "s3://" in str(store.get("environment", {}).get("PYAIRTABLE_OBJECT_STORE_URL", "")):
        depends = store.get("depends_on", {})
        check(depends.get("minio", {}).get("condition") == "service_healthy"
              and depends.get("minio-bucket", {}).get("condition") == "service_completed_successfully",
              "compose: files waits for MinIO and for minio-bucket to create its bucket")
    router = ours.get("router", {})
    check(sorted(d for d in router.get("depends_on", {}) if d in subgraphs) == subgraphs,
          "compose: the router waits for every subgraph")
    raw = (ROOT / "docker-compose.yml").read_text()
    for secret in ("POSTGRES_PASSWORD", "PYAIRTABLE_INTERNAL_SECRET", "MINIO_ROOT_PASSWORD"):
        check(f"${{{secret}:?" in raw, f"compose: {secret} comes from the environment and is required")


def objects(path):
    return [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d]


def container_rules(kind, name, pod):
    check(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{kind} {name}: runAsNonRoot")
    check(pod.get("automountServiceAccountToken") is False, f"{kind} {name}: no service account token")
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        check(sc.get("readOnlyRootFilesystem") is True, f"{name}: read-only root filesystem")
        check(sc.get("allowPrivilegeEscalation") is False, f"{name}: no privilege escalation")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: every capability dropped")
        for bound in ("requests", "limits"):
            check({"cpu", "memory"} <= set(c.get("resources", {}).get(bound, {})), f"{name}: {bound}")


def kubernetes(path, subgraphs):
    docs = objects(path)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    deployments = by_kind.get("Deployment", {})
    expected = ["pyairtable-router"] + [f"pyairtable-{s}" for s in subgraphs]
    check(sorted(deployments) == sorted(expected), f"{path}: Deployments {sorted(deployments)} != {expected}")
    for name, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        container_rules("Deployment", name, pod)
        c = pod["containers"][0]
        check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", f"{name}: readiness /readyz")
        check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", f"{name}: liveness /healthz")
        for kind in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"):
            check(name in by_kind.get(kind, {}), f"{name}: a {kind}")
    jobs = by_kind.get("Job", {})
    check([j["spec"]["template"]["spec"]["containers"][0]["args"] for j in jobs.values()] == [["migrate"]],
          "a migration Job")
    for job in jobs.values():
        container_rules("Job", job["metadata"]["name"], job["spec"]["template"]["spec"])
    network_policies(by_kind.get("NetworkPolicy", {}), subgraphs)
    if "pyairtable-files" in deployments:
        files_env = {e["name"]: e.get("value") for e in
                     deployments["pyairtable-files"]["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        check(str(files_env.get("PYAIRTABLE_OBJECT_STORE_URL", "")).startswith("s3://"),
              f"{path}: files keeps its bytes in S3 (its pods share no folder)")
    router_env = {e["name"]: e.get("value") for e in deployments["pyairtable-router"]["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    named = sorted(p.split("=")[0] for p in router_env.get("PYAIRTABLE_SUBGRAPHS", "").split(","))
    check(named == sorted(subgraphs), f"the router knows every subgraph: {named}")


def network_policies(policies, subgraphs):
    router = policies["pyairtable-router"]["spec"]
    check(router["ingress"] and "from" not in router["ingress"][0], "the router accepts traffic from outside")
    for s in subgraphs:
        spec = policies[f"pyairtable-{s}"]["spec"]
        sources = [peer for rule in spec["ingress"] for peer in rule.get("from", [])]
        components = sorted(p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                            for p in sources if "podSelector" in p)
        allowed = ["router", "subgraph"] if s == "permissions" else ["router"]
        check(components == allowed, f"{s}: accepts traffic from {components}, expected {allowed}")
        check(all("podSelector" in p or "namespaceSelector" in p for p in sources) and sources,
              f"{s}: no rule open to everyone")


def dashboard():
    text = (ROOT / "deploy/grafana/pyairtable.json").read_text()
    board = json.loads(text)
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    readme = (ROOT / "README.md").read_text()
    for name in sorted(set(re.findall(r"\b((?:http|router|pyairtable)_[a-z_]+?)(?:_bucket|_count|_sum)?[{()\[ ]", " ".join(exprs)))):
        check(f"`{name}`" in readme, f"dashboard plots {name}, which README does not list")


def main():
    compose_json, k8s, extra = sys.argv[1:4]
    subgraphs = subgraphs_of_the_code()
    dockerfile()
    compose(compose_json, subgraphs)
    kubernetes(k8s, subgraphs)
    kubernetes(extra, sorted(subgraphs + ["reports"]))
    dashboard()
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    if failures:
        sys.exit(1)
    print(f"deployment files agree: {len(subgraphs)} subgraphs ({', '.join(subgraphs)})")


if __name__ == "__main__":
    main()
