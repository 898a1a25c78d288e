//! The monitoring bundle in `deploy/` against real parts: the alert rules pass `promtool
//! check rules` and their own unit tests (`promtool test rules`); a real Prometheus, loading
//! `deploy/prometheus/camgate-rules.yml` as is, scrapes a running gateway with a token of the
//! scrape-only `metrics` role and raises `CamgateSourceDown` through its own API once the
//! demo RTSP camera is killed; every `camgate_*` metric the dashboard and the rules query is
//! in a live `/metrics` scrape; the compose file mounts files that exist and agrees with the
//! example scrape configuration and the gateway manifest it ships.
//!
//! Prometheus and promtool are Debian's `prometheus` package (`scripts/install-deps`). Every
//! child (Prometheus, the demo camera) is owned by a guard that kills and reaps it on drop,
//! on every path; Prometheus also gets SIGKILL if the thread that started it dies
//! (`setpriv --pdeathsig`). Only 127.0.0.1 is bound. Waits poll against generous deadlines.

#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "drives real processes and sockets, whose timing is the wall clock's"
)]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::rtsp::RtspServer;
use support::{deploy_dir as deploy, http, read_text as read, start};

const ADMIN: &str = "admin-token-0123456789abc";
const METRICS: &str = "metrics-token-0123456789";

fn rules_file() -> PathBuf {
    deploy().join("prometheus/camgate-rules.yml")
}

/// A YAML file as JSON values (what both Prometheus' and Compose's files are).
fn yaml(path: &Path) -> serde_json::Value {
    serde_saphyr::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

/// Runs `promtool` with `args` in `deploy/prometheus`, failing the test with its output
/// unless it succeeds; returns its stdout.
fn promtool(args: &[&str]) -> String {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install Debian's `prometheus` (scripts/install-deps)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    let check = promtool(&["check", "rules", "camgate-rules.yml"]);
    assert!(check.contains("SUCCESS: 8 rules found"), "{check}");
    let tests = promtool(&["test", "rules", "camgate-rules.test.yml"]);
    assert!(tests.contains("SUCCESS"), "{tests}");

    // Every alert has a unit test, and carries what docs/monitoring.md promises.
    let rules = yaml(&rules_file());
    let tested = read(&deploy().join("prometheus/camgate-rules.test.yml"));
    let mut alerts = 0;
    for rule in rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
    {
        let name = rule["alert"].as_str().expect("only alerting rules");
        alerts += 1;
        assert!(
            tested.contains(&format!("alertname: {name}\n")),
            "{name} has no promtool unit test"
        );
        assert!(rule["for"].is_string(), "{name} has no `for:`");
        let severity = rule["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("critical" | "warning")),
            "{name}: severity {severity:?}"
        );
        for annotation in ["summary", "description", "runbook"] {
            let text = rule["annotations"][annotation].as_str().unwrap_or_default();
            assert!(
                !text.trim().is_empty() && !text.contains('\n'),
                "{name}: `{annotation}` must be one non-empty line"
            );
        }
    }
    assert_eq!(alerts, 8);
}

/// A free port on 127.0.0.1 (the kernel's pick; released for the child to bind).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running Prometheus with its own configuration and storage in a temporary directory;
/// dropping it kills and reaps it.
struct Prometheus {
    child: Option<Child>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on `config` (YAML text; `{dir}` stands for its temporary
    /// directory) and waits until it is ready.
    async fn start(config: &str, files: &[(&str, &str)]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in files {
            std::fs::write(dir.path().join(name), contents).unwrap();
        }
        let config = config.replace("{dir}", dir.path().to_str().unwrap());
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        // setpriv: SIGKILL it if this thread dies without running the guard's drop.
        let mut command = if Path::new("/usr/bin/setpriv").exists() {
            let mut c = Command::new("/usr/bin/setpriv");
            c.args(["--pdeathsig", "KILL", "prometheus"]);
            c
        } else {
            Command::new("prometheus")
        };
        let child = command
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run prometheus ({e}): install Debian's `prometheus` (scripts/install-deps)"
                )
            });
        let mut prometheus = Prometheus {
            child: Some(child),
            addr,
            dir,
        };
        let ready = poll(Duration::from_secs(30), || async {
            // Refused until it listens; then 503 until it is ready.
            tokio::net::TcpStream::connect(addr).await.ok()?;
            (http(addr, "GET", "/-/ready", &[], None).await.0 == 200).then_some(())
        })
        .await;
        if ready.is_none() {
            let exited = prometheus.child.as_mut().unwrap().try_wait().unwrap();
            panic!(
                "Prometheus not ready within 30 s (exit: {exited:?}); log:\n{}",
                prometheus.log()
            );
        }
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET path` on Prometheus' API; the body as JSON.
    async fn api(&self, path: &str) -> serde_json::Value {
        let (status, _, body) = http(self.addr, "GET", path, &[], None).await;
        assert_eq!(
            status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).expect("Prometheus answers JSON")
    }

    /// An instant query's result vector.
    async fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let answer = self
            .api(&format!("/api/v1/query?query={}", url_encode(promql)))
            .await;
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Percent-encodes a query parameter value.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Calls `check` every 200 ms until it returns `Some`, or `timeout` passes (`None`).
async fn poll<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The gateway manifest of the live test: admin and scrape-only tokens, an always-on stream
/// from `url` through the default `rtsp` plugin, and an on-demand stream nobody watches
/// (stopped on purpose: never "down").
fn manifest(url: &str) -> String {
    format!(
        r#"
auth:
  tokens:
    - role: admin
      token: {ADMIN}
    - role: metrics
      token: {METRICS}
streams:
  - id: cam
    on_demand: false
    source: {{ plugin: rtsp, url: "{url}" }}
  - id: idle
    source: {{ plugin: testsrc, width: 160, height: 90 }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scraping_with_the_metrics_token_raises_source_down_when_the_camera_dies() {
    let mut camera = RtspServer::start(&[]);
    let gateway = start(&manifest(&camera.url("/test"))).await;
    let target = gateway.local_addr();

    // The credential Prometheus holds is the scrape-only one: it reads /metrics and nothing
    // else (no stream list, no config), and it is not the admin token.
    let bearer = format!("Bearer {METRICS}");
    let auth: &[(&str, &str)] = &[("Authorization", &bearer)];
    assert_eq!(http(target, "GET", "/metrics", auth, None).await.0, 200);
    assert_eq!(http(target, "GET", "/api/streams", auth, None).await.0, 403);
    assert_eq!(http(target, "GET", "/api/config", auth, None).await.0, 403);
    assert_eq!(http(target, "GET", "/metrics", &[], None).await.0, 401);

    let rules = rules_file();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: camgate
    authorization:
      type: Bearer
      credentials_file: "{{dir}}/metrics-token"
    static_configs:
      - targets: ["{target}"]
"#,
        rules = rules.display()
    );
    assert!(!config.contains(ADMIN));
    let prometheus = Prometheus::start(&config, &[("metrics-token", METRICS)]).await;
    let token_file = read(&prometheus.dir.path().join("metrics-token"));
    assert_eq!(token_file, METRICS, "Prometheus holds the metrics token");
    assert_ne!(token_file, ADMIN);

    // Prometheus loaded the rules file as is.
    let groups = prometheus.api("/api/v1/rules").await;
    let loaded = groups["data"]["groups"][0]["rules"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(loaded, 8, "rules Prometheus loaded: {groups}");
    // Prometheus never shows the credential it holds.
    let shown = prometheus.api("/api/v1/status/config").await.to_string();
    assert!(!shown.contains(METRICS) && !shown.contains(ADMIN));

    // The scrape works with that token, and Prometheus sees the stream live.
    let live = poll(Duration::from_secs(45), || async {
        let up = prometheus.query(r#"up{job="camgate"} == 1"#).await;
        let live = prometheus
            .query(r#"camgate_source_up{job="camgate",stream="cam"} == 1"#)
            .await;
        (!up.is_empty() && !live.is_empty()).then_some(())
    })
    .await;
    if live.is_none() {
        let targets = prometheus.api("/api/v1/targets").await;
        panic!(
            "Prometheus never saw stream cam live; targets: {targets}\nlog:\n{}",
            prometheus.log()
        );
    }
    // The rule's input, scraped while live (say so at once rather than after a long wait).
    let states = prometheus
        .query(r#"camgate_source_state{stream="cam",state="live"} == 1"#)
        .await;
    assert!(
        !states.is_empty(),
        "Prometheus has no camgate_source_state{{state=\"live\"}} 1 for the live stream: \
         CamgateSourceDown cannot fire without it"
    );
    let alerts = prometheus.api("/api/v1/alerts").await;
    assert!(
        !alerts.to_string().contains("CamgateSourceDown"),
        "no source-down alert while the camera is live: {alerts}"
    );

    // The camera dies: the source goes retrying, and the alert becomes pending (then, after
    // its `for:`, firing) in Prometheus' own alert list.
    camera.stop();
    let raised = poll(Duration::from_secs(30), || async {
        let alerts = prometheus.api("/api/v1/alerts").await;
        alerts["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| {
                a["labels"]["alertname"] == "CamgateSourceDown"
                    && a["labels"]["stream"] == "cam"
                    && a["labels"]["job"] == "camgate"
                    && matches!(a["state"].as_str(), Some("pending" | "firing"))
            })
            .cloned()
    })
    .await;
    let Some(alert) = raised else {
        let alerts = prometheus.api("/api/v1/alerts").await;
        let states = prometheus
            .query(r#"camgate_source_state{stream="cam"}"#)
            .await;
        let (_, _, api) = http(
            target,
            "GET",
            "/api/streams/cam",
            &[("Authorization", &format!("Bearer {ADMIN}"))],
            None,
        )
        .await;
        panic!(
            "CamgateSourceDown never became pending within 30 s\nalerts: {alerts}\n\
             camgate_source_state in Prometheus: {states:?}\nthe gateway says: {}",
            String::from_utf8_lossy(&api)
        );
    };
    assert_eq!(alert["labels"]["severity"], "critical", "{alert}");
    let alerts = prometheus.api("/api/v1/alerts").await;
    assert!(
        !alerts.to_string().contains(r#""stream":"idle""#),
        "a stopped on-demand stream is not down: {alerts}"
    );
    assert!(
        alert["annotations"]["runbook"]
            .as_str()
            .is_some_and(|r| r.contains("/api/streams/cam")),
        "{alert}"
    );
    drop(prometheus);
    gateway.shutdown().await;
}

/// The `camgate_*` names in a PromQL expression (identifiers, so a name inside a longer one
/// or in a label value does not count twice).
fn metric_names(expr: &str, names: &mut BTreeSet<String>) {
    let bytes = expr.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut i = 0;
    while i < bytes.len() {
        if ident(bytes[i]) && (i == 0 || !ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            if word.starts_with("camgate_") {
                names.insert(word.to_owned());
            }
        } else {
            i += 1;
        }
    }
}

/// Every PromQL expression in a dashboard or rules file: the values of `expr` keys, and the
/// template variables' queries (`label_values(camgate_source_up, stream)`).
fn expressions(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("query", serde_json::Value::String(s)) if s.contains("camgate_") => {
                        out.push(s.clone())
                    }
                    _ => expressions(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| expressions(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_rules_query_is_in_a_live_scrape() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read(&deploy().join("grafana/camgate.json")))
            .expect("camgate.json is JSON");
    let mut exprs = Vec::new();
    expressions(&dashboard, &mut exprs);
    let panel_exprs = exprs.len();
    expressions(&yaml(&rules_file()), &mut exprs);
    assert!(
        panel_exprs >= 20 && exprs.len() >= panel_exprs + 8,
        "found {panel_exprs} dashboard and {} rule expressions",
        exprs.len() - panel_exprs
    );
    let mut wanted = BTreeSet::new();
    for expr in &exprs {
        metric_names(expr, &mut wanted);
    }

    // One configured stream (a test pattern that configures its fps), nothing else.
    let gateway = start(
        r#"
streams:
  - id: pattern
    on_demand: false
    source: { plugin: testsrc, width: 160, height: 90, fps: 10 }
"#,
    )
    .await;
    // Some series appear with the first sample (the frame age, about a second after the
    // source goes live): scrape until nothing is missing or the deadline passes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (missing, families) = loop {
        let (status, _, body) = http(gateway.local_addr(), "GET", "/metrics", &[], None).await;
        assert_eq!(status, 200);
        let scrape = String::from_utf8(body).unwrap();
        // Families by type, from the `# TYPE name type` lines.
        let families: std::collections::BTreeMap<String, String> = scrape
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
            .collect();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|name| {
                let histogram_part = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .is_some_and(|base| {
                        families.get(base).map(String::as_str) == Some("histogram")
                    });
                let plain = families
                    .get(name.as_str())
                    .is_some_and(|kind| kind != "histogram");
                !(histogram_part || plain)
            })
            .collect();
        if missing.is_empty() || tokio::time::Instant::now() > deadline {
            break (missing, families);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    gateway.shutdown().await;
    assert!(
        missing.is_empty(),
        "metrics the dashboard or the rules query but a live scrape lacks \
         (a histogram is queried as NAME_bucket/_sum/_count): {missing:?}\n\
         families in the scrape: {:?}",
        families.keys().collect::<Vec<_>>()
    );
}

/// The `source` of every bind mount (`./x:/y[:ro]`) of a Compose service, relative to
/// the compose file's directory.
fn bind_mounts(service: &serde_json::Value) -> Vec<(String, String)> {
    service["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .filter(|v| v.starts_with("./") || v.starts_with("../"))
        .map(|v| {
            let mut parts = v.split(':');
            (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_compose_bundle_mounts_existing_files_and_agrees_with_its_configs() {
    let dir = deploy();
    let compose = yaml(&dir.join("compose.yaml"));
    let services = compose["services"].as_object().expect("services");
    for name in ["camgate", "demo-camera", "prometheus", "grafana"] {
        assert!(services.contains_key(name), "no service {name}");
    }
    // Every published port is bound to loopback.
    for (name, service) in services {
        for port in service["ports"].as_array().into_iter().flatten() {
            let port = port.as_str().expect("ports as strings");
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name} publishes {port} beyond loopback"
            );
        }
        // Build contexts exist.
        if let Some(context) = service["build"].as_str() {
            assert!(
                dir.join(context).join("Dockerfile").is_file(),
                "{name}: no Dockerfile in {context}"
            );
        }
    }
    // Every bind-mounted file or directory exists.
    let mut mounted = std::collections::BTreeMap::new();
    for (name, service) in services {
        for (source, target) in bind_mounts(service) {
            assert!(
                dir.join(&source).exists(),
                "{name} mounts {source}, which does not exist"
            );
            mounted.insert(target, dir.join(source));
        }
    }

    // Prometheus: the mounted config loads the mounted rules and scrapes the gateway service
    // with the shared secret; promtool accepts it.
    let prometheus_yml = yaml(&mounted["/etc/prometheus/prometheus.yml"]);
    assert_eq!(
        prometheus_yml["rule_files"][0],
        "/etc/prometheus/camgate-rules.yml"
    );
    assert!(mounted.contains_key("/etc/prometheus/camgate-rules.yml"));
    let job = &prometheus_yml["scrape_configs"][0];
    assert_eq!(
        job["job_name"], "camgate",
        "CamgateTargetDown matches job camgate"
    );
    let listen_port = "8000";
    assert_eq!(
        job["static_configs"][0]["targets"][0],
        format!("camgate:{listen_port}")
    );
    let secret = "/run/secrets/camgate_metrics_token";
    assert_eq!(job["authorization"]["credentials_file"], secret);
    for service in ["camgate", "prometheus"] {
        assert_eq!(
            services[service]["secrets"][0], "camgate_metrics_token",
            "{service} gets the metrics token"
        );
    }
    promtool(&["check", "config", "--syntax-only", "prometheus.yml"]);

    // Grafana: the provisioned provider reads the folder the dashboard is mounted in; the
    // data source is the compose Prometheus.
    let provider = yaml(&mounted["/etc/grafana/provisioning/dashboards"].join("camgate.yaml"));
    let folder = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    assert_eq!(
        mounted[&format!("{folder}/camgate.json")],
        dir.join("grafana/camgate.json")
    );
    let datasource =
        yaml(&mounted["/etc/grafana/provisioning/datasources"].join("prometheus.yaml"));
    assert_eq!(
        datasource["datasources"][0]["url"],
        "http://prometheus:9090"
    );

    // The gateway's manifest: valid, listens on the port Prometheus scrapes, and reads the
    // metrics token from the secret (checked here with a stand-in file at that path).
    let manifest_path = &mounted["/etc/camgate/camgate.yaml"];
    let text = read(manifest_path);
    assert!(text.contains(&format!("listen: 0.0.0.0:{listen_port}")));
    assert!(text.contains(&format!("role: metrics\n      token_file: {secret}")));
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), METRICS).unwrap();
    let text = text.replace(secret, token.path().to_str().unwrap());
    let env = |name: &str| (name == "CAMGATE_ADMIN_TOKEN").then(|| ADMIN.to_owned());
    let catalog = camgate::plugins::PluginCatalog::with_builtins();
    if let Err(errors) = camgate::config::parse(&text, manifest_path, &env, &catalog) {
        panic!("deploy/camgate.yaml is invalid:\n{errors}");
    }
    // The demo camera URL names the compose service.
    assert_eq!(
        services["camgate"]["environment"]["DEMO_CAMERA_URL"],
        "rtsp://demo-camera:8554/test"
    );
}
