//! The Kubernetes manifests (`deploy/kubernetes/`) offline: every file parses, the set
//! builds with `kubectl kustomize`, every object passes the `kubernetes-validate` schemas
//! strictly, and the manifests agree with the gateway: the ConfigMap's manifest parses with
//! the gateway's own parser in the pod's environment (every `${VAR}` defined, every Secret
//! key present); ports (container, `server.listen`, probes, Services, HAProxy servers,
//! `cluster.port`), probe paths (the router's routes), `members_dns` / headless Service /
//! `serviceName`, and HAProxy's server names vs the pod names line up.
//!
//! Tools: `kubectl` and the PyPI `kubernetes-validate` (`scripts/install-deps`). Nothing is
//! applied to a cluster.

#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "drives real processes and sockets, whose timing is the wall clock's"
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;
use support::{deploy_dir as deploy, read_text as read, rtsp::workspace};

fn kube_dir() -> PathBuf {
    deploy().join("kubernetes")
}

/// Every document of every YAML file under deploy/kubernetes, by file name.
fn kube_files() -> BTreeMap<String, Vec<Value>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(kube_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let docs: Vec<Value> = serde_saphyr::from_multiple(&read(&path))
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            files.insert(name, docs);
        }
    }
    files
}

/// The resources as kind/name → document (the Secret from its example file).
fn kube_objects() -> BTreeMap<String, Value> {
    let mut objects = BTreeMap::new();
    for (file, docs) in kube_files() {
        if file == "kustomization.yaml" {
            continue;
        }
        for doc in docs {
            let key = format!(
                "{}/{}",
                doc["kind"].as_str().unwrap(),
                doc["metadata"]["name"].as_str().unwrap()
            );
            assert!(
                doc["metadata"]["namespace"].is_null(),
                "{key}: namespace-scoped by the user, not the file"
            );
            assert!(objects.insert(key.clone(), doc).is_none(), "{key} twice");
        }
    }
    objects
}

fn object<'a>(objects: &'a BTreeMap<String, Value>, key: &str) -> &'a Value {
    objects
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in deploy/kubernetes"))
}

#[test]
fn kubernetes_kustomization_lists_every_file_and_builds() {
    let files = kube_files();
    let kustomization = &files["kustomization.yaml"][0];
    let resources: BTreeSet<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    // Every manifest is applied, except the Secret's example (placeholders).
    let expected: BTreeSet<&str> = files
        .keys()
        .map(String::as_str)
        .filter(|f| *f != "kustomization.yaml" && *f != "secret.example.yaml")
        .collect();
    assert_eq!(resources, expected);
    for generator in kustomization["configMapGenerator"].as_array().unwrap() {
        for file in generator["files"].as_array().unwrap() {
            let path = kube_dir().join(file.as_str().unwrap());
            assert!(path.is_file(), "{} missing", path.display());
        }
    }

    // The real build (offline), then the schemas of every object it makes and of the
    // Secret's example, strictly (unknown fields are errors), for an old and a new release.
    let output = Command::new("kubectl")
        .args(["kustomize"])
        .arg(kube_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl ({e}): scripts/install-deps installs it"));
    assert!(
        output.status.success(),
        "kubectl kustomize: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let built = dir.path().join("built.yaml");
    std::fs::write(&built, &output.stdout).unwrap();
    let kinds: BTreeSet<String> =
        serde_saphyr::from_multiple::<Value>(&String::from_utf8_lossy(&output.stdout))
            .unwrap()
            .iter()
            .map(|d| d["kind"].as_str().unwrap().to_owned())
            .collect();
    for kind in [
        "StatefulSet",
        "Service",
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(kind), "the build makes a {kind}");
    }
    for version in ["1.29.0", "1.37.0"] {
        let output = Command::new(kubernetes_validate())
            .args(["--strict", "--quiet", "-k", version])
            .arg(&built)
            .arg(kube_dir().join("secret.example.yaml"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "kubernetes-validate {version}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The `kubernetes-validate` program: `$KUBERNETES_VALIDATE`, else the virtualenv that
/// `scripts/install-deps` makes, else `PATH`.
fn kubernetes_validate() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBERNETES_VALIDATE") {
        return path.into();
    }
    let venv = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cache/camgate/kubernetes-validate/bin/kubernetes-validate");
    if venv.is_file() {
        venv
    } else {
        "kubernetes-validate".into()
    }
}

/// `name address` of every `server` line of `backend` in an HAProxy configuration.
fn haproxy_servers(cfg: &str, backend: &str) -> Vec<(String, String)> {
    let mut in_backend = false;
    let mut servers = Vec::new();
    for line in cfg.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("backend ") {
            in_backend = name == backend;
        } else if in_backend && line.starts_with("server ") {
            let words: Vec<&str> = line.split_whitespace().collect();
            servers.push((words[1].to_owned(), words[2].trim_matches('"').to_owned()));
        }
    }
    servers
}

/// The StatefulSet's container `camgate`.
fn gateway_container(objects: &BTreeMap<String, Value>) -> &Value {
    &object(objects, "StatefulSet/camgate")["spec"]["template"]["spec"]["containers"][0]
}

/// A port given by number or by the container's port name, as a number.
fn resolve_port(container: &Value, port: &Value) -> u64 {
    match port {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(name) => container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no container port named {name}"))["containerPort"]
            .as_u64()
            .unwrap(),
        other => panic!("not a port: {other}"),
    }
}

/// The manifest in ConfigMap camgate-config and its file name.
fn configmap_manifest(objects: &BTreeMap<String, Value>) -> (String, String) {
    let data = object(objects, "ConfigMap/camgate-config")["data"]
        .as_object()
        .unwrap();
    assert_eq!(data.len(), 1, "one file: the manifest");
    let (name, text) = data.iter().next().unwrap();
    (name.clone(), text.as_str().unwrap().to_owned())
}

/// The manifest as plain YAML values (for the cluster section, which the gateway's parser
/// may not know yet).
fn manifest_values(objects: &BTreeMap<String, Value>) -> Value {
    serde_saphyr::from_str(&configmap_manifest(objects).1).unwrap()
}

#[test]
fn kubernetes_names_ports_and_probes_agree_with_the_gateway() {
    let objects = kube_objects();
    let set = object(&objects, "StatefulSet/camgate");
    let container = gateway_container(&objects);
    let manifest = manifest_values(&objects);
    let cluster = &manifest["cluster"];

    // Port: container = server.listen = probes = Services = HAProxy servers = cluster.port.
    let port = resolve_port(container, &container["ports"][0]["containerPort"]);
    let listen: SocketAddr = manifest["server"]["listen"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(u64::from(listen.port()), port, "server.listen");
    assert_eq!(cluster["port"].as_u64(), Some(port), "cluster.port");
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            resolve_port(container, &container[probe]["httpGet"]["port"]),
            port,
            "{probe}"
        );
    }
    for service in ["Service/camgate-peers", "Service/camgate"] {
        let spec = &object(&objects, service)["spec"];
        assert_eq!(
            spec["ports"][0]["port"].as_u64(),
            Some(port),
            "{service} port"
        );
        assert_eq!(
            resolve_port(container, &spec["ports"][0]["targetPort"]),
            port,
            "{service} targetPort"
        );
        assert_eq!(
            spec["selector"], set["spec"]["selector"]["matchLabels"],
            "{service} selects the gateways"
        );
    }

    // Probe paths are the gateway's own routes.
    let routes: BTreeSet<&str> = camgate::http::router::ROUTES
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.template)
        .collect();
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(routes.contains("/readyz") && routes.contains("/healthz"));

    // Membership: members_dns = <headless Service>.<namespace>...; it is the StatefulSet's
    // serviceName, lists every pod, starting ones included (the gateways judge readiness
    // by their own /readyz probes); node = POD_NAME = the pod's name.
    let headless = object(&objects, "Service/camgate-peers");
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);
    let members_dns = cluster["members_dns"].as_str().unwrap();
    assert_eq!(members_dns.split('.').next(), Some("camgate-peers"));
    assert_eq!(set["spec"]["serviceName"], "camgate-peers");
    assert_eq!(set["spec"]["podManagementPolicy"], "Parallel");
    assert_eq!(cluster["node"], "${POD_NAME}");
    let env = &container["env"];
    let env_var = |name: &str| -> &Value {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no env {name}"))
    };
    assert_eq!(
        env_var("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env_var("POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    // The cluster token is one of the configured tokens, with access to every stream.
    let cluster_token = &cluster["token"];
    assert!(
        manifest["auth"]["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| &t["token"] == cluster_token
                && t["streams"].is_null()
                && t["role"] != "metrics"),
        "cluster.token is a viewer/admin token for every stream"
    );

    // The manifest is mounted as a directory (ConfigMap updates reach it) at the path the
    // gateway is started with.
    let (file, _) = configmap_manifest(&objects);
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let config_arg = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "config")
        .unwrap();
    assert!(
        mount["subPath"].is_null(),
        "a subPath mount never sees ConfigMap updates"
    );
    assert_eq!(
        format!("{}/{file}", mount["mountPath"].as_str().unwrap()),
        config_arg
    );
    let volume = set["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "config")
        .unwrap();
    assert_eq!(volume["configMap"]["name"], "camgate-config");
    // The API's files go to a writable volume (the root filesystem is read-only).
    let api_file = manifest["server"]["api_streams_file"].as_str().unwrap();
    assert!(container["securityContext"]["readOnlyRootFilesystem"] == true);
    assert!(
        container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| {
                m["readOnly"] != true
                    && api_file.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap()))
            }),
        "server.api_streams_file on a writable mount"
    );
    // The image's user (Dockerfile) is the one the pod runs as.
    let uid = set["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
        .as_u64()
        .unwrap();
    assert!(read(&workspace().join("Dockerfile")).contains(&format!("--uid {uid} ")));

    // HAProxy: one server per pod in each backend, named like the pods (= node names), at
    // the pod's DNS name under the headless Service, on the gateway's port.
    let cfg = read(&kube_dir().join("haproxy/haproxy.cfg"));
    let replicas = set["spec"]["replicas"].as_u64().unwrap();
    for backend in ["camgate", "camgate_streams"] {
        let servers = haproxy_servers(&cfg, backend);
        let expected: Vec<(String, String)> = (0..replicas)
            .map(|i| {
                (
                    format!("camgate-{i}"),
                    format!(
                        "camgate-{i}.camgate-peers.${{POD_NAMESPACE}}.svc.cluster.local:{port}"
                    ),
                )
            })
            .collect();
        assert_eq!(servers, expected, "backend {backend}");
    }
    let lb = object(&objects, "Deployment/camgate-lb");
    let lb_container = &lb["spec"]["template"]["spec"]["containers"][0];
    assert!(lb_container["env"].as_array().unwrap().iter().any(|e| {
        e["name"] == "POD_NAMESPACE"
            && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    }));
    let lb_volume = &lb["spec"]["template"]["spec"]["volumes"][0];
    let files = kube_files();
    let generated = &files["kustomization.yaml"][0]["configMapGenerator"][0];
    assert_eq!(lb_volume["configMap"]["name"], generated["name"]);
    let lb_args: Vec<&str> = lb_container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        lb_args.last().copied(),
        Some(
            format!(
                "{}/haproxy.cfg",
                lb_container["volumeMounts"][0]["mountPath"]
                    .as_str()
                    .unwrap()
            )
            .as_str()
        )
    );
    let lb_service = object(&objects, "Service/camgate-lb");
    assert_eq!(lb_service["spec"]["type"], "LoadBalancer");
    assert_eq!(
        resolve_port(lb_container, &lb_service["spec"]["ports"][0]["targetPort"]),
        resolve_port(lb_container, &lb_container["ports"][0]["containerPort"])
    );
    assert!(cfg.contains("monitor-uri /haproxy-healthz"));
    assert_eq!(
        lb_container["readinessProbe"]["httpGet"]["path"],
        "/haproxy-healthz"
    );
}

/// Placeholder values for the StatefulSet's env vars, as the pod would have them.
fn pod_env(objects: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    let container = gateway_container(objects);
    let secret = object(objects, "Secret/camgate-tokens");
    let mut env = BTreeMap::new();
    for var in container["env"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap().to_owned();
        let value = if let Some(v) = var["value"].as_str() {
            v.to_owned()
        } else if let Some(field) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match field {
                "metadata.name" => "camgate-0".to_owned(),
                "metadata.namespace" => "camgate".to_owned(),
                other => panic!("unexpected fieldRef {other}"),
            }
        } else {
            let key_ref = &var["valueFrom"]["secretKeyRef"];
            assert_eq!(key_ref["name"], "camgate-tokens", "{name}");
            let key = key_ref["key"].as_str().unwrap();
            assert!(
                secret["stringData"][key].is_string(),
                "{name}: key {key} is not in the Secret"
            );
            // Unique per variable, long enough for a token.
            format!("placeholder-{name}-0123456789")
        };
        env.insert(name, value);
    }
    env
}

/// Parses `text` (the ConfigMap's manifest, possibly edited) with the gateway's parser and
/// the pod's env; also returns the variables the parser looked up.
fn parse_manifest(
    text: &str,
    env: &BTreeMap<String, String>,
) -> (Result<camgate::config::Manifest, String>, BTreeSet<String>) {
    let asked = Mutex::new(BTreeSet::new());
    let lookup = |name: &str| {
        asked.lock().unwrap().insert(name.to_owned());
        env.get(name).cloned()
    };
    let catalog = camgate::plugins::PluginCatalog::with_builtins();
    let result = camgate::config::parse(
        text,
        Path::new("/etc/camgate/camgate.yaml"),
        &lookup,
        &catalog,
    )
    .map_err(|e| e.to_string());
    (result, asked.into_inner().unwrap())
}

#[test]
fn kubernetes_configmap_manifest_parses_with_the_pods_environment() {
    let objects = kube_objects();
    let env = pod_env(&objects);
    let (_, text) = configmap_manifest(&objects);
    // Every ${VAR} the manifest names is defined by the pod, and the parser needs no other.
    let referenced: BTreeSet<String> = text
        .split("${")
        .skip(1)
        .map(|rest| rest.split(['}', ':']).next().unwrap().to_owned())
        .collect();
    for name in &referenced {
        assert!(
            env.contains_key(name),
            "${{{name}}} is not defined by the StatefulSet"
        );
    }
    let (manifest, asked) = parse_manifest(&text, &env);
    let manifest = manifest.unwrap_or_else(|e| panic!("the ConfigMap's manifest is invalid:\n{e}"));
    assert_eq!(asked, referenced, "the parser substituted exactly these");
    assert_eq!(manifest.streams.len(), 3);
    assert_eq!(manifest.auth.tokens.len(), 3);
    // As pod camgate-0 in namespace camgate sees it.
    let cluster = manifest.cluster.expect("cluster mode");
    assert_eq!(cluster.node, "camgate-0");
    assert_eq!(
        cluster.membership,
        camgate::config::Membership::Dns {
            name: "camgate-peers.camgate.svc.cluster.local".to_owned(),
            port: 8000
        }
    );
    assert!(cluster.token.is_some());
}
