//! The cluster's deployment files against real tools: `deploy/haproxy/camgate.lua` computes
//! the shared rendezvous test vectors (`gateway/tests/fixtures/rendezvous-vectors.txt`)
//! under `lua5.3` and the same owners as the gateway's `cluster::owner` for many more; a
//! real HAProxy running the shipped `deploy/haproxy/haproxy.cfg` unchanged (addresses from
//! its environment variables) sends every stream URL (and a stream's retry) to the owner
//! the gateways compute among three loopback backends, round-robins the rest, and moves a
//! dead backend's streams to their new owner within the health-check window (and back when
//! it returns); both HAProxy configurations pass `haproxy -c`. The Kubernetes manifests
//! (`deploy/kubernetes/`) build with `kubectl kustomize`, pass the `kubernetes-validate`
//! schemas, and agree with the gateway: the ConfigMap's manifest parses with the gateway's
//! parser in the pod's environment, and ports, probe paths, names, env vars and Secret keys
//! line up (`kubernetes_*` tests).
//!
//! Tools: Debian's `haproxy` and `lua5.3`, `kubectl` and the PyPI `kubernetes-validate`
//! (`scripts/install-deps` installs them). Every child is killed and reaped by a guard on
//! drop (HAProxy also gets SIGKILL if the test thread dies: `setpriv --pdeathsig`). Only
//! 127.0.0.1 is bound; the Kubernetes configuration is only checked, never run.

#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "drives real processes and sockets, whose timing is the wall clock's"
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::http;
use support::rtsp::workspace;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

fn deploy() -> PathBuf {
    workspace().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------
// The rendezvous vectors

/// The shared test vectors (the lead's file, also asserted by gateway/src/cluster/): lines
/// `member<TAB>stream<TAB>score hex`, and comments `# sN -> owner` (owner among a, b, c).
fn vectors_file() -> PathBuf {
    workspace().join("gateway/tests/fixtures/rendezvous-vectors.txt")
}

/// Runs `script` under lua5.3 with `camgate` = deploy/haproxy/camgate.lua loaded standalone
/// and the vectors file on stdin; returns stdout.
fn lua(script: &str) -> String {
    let lua_file = deploy().join("haproxy/camgate.lua");
    let prelude = format!("local camgate = dofile({:?})\n", lua_file.to_str().unwrap());
    let output = Command::new("lua5.3")
        .args(["-e", &format!("{prelude}{script}")])
        .stdin(std::fs::File::open(vectors_file()).unwrap())
        .output()
        .unwrap_or_else(|e| panic!("cannot run lua5.3 ({e}): scripts/install-deps installs it"));
    assert!(
        output.status.success(),
        "lua5.3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn lua_rendezvous_matches_the_vectors() {
    // Every vector line rewritten with the Lua function's own answer: must be the same line.
    let computed = lua(r##"
for line in io.lines() do
  local member, stream, hex = line:match("^([^#\t]*)\t([^\t]*)\t(%x+)$")
  local s, owner = line:match("^# (s%d+) %-> (%S+)$")
  if hex then
    print(string.format("%s\t%s\t%016x", member, stream, camgate.score(member, stream)))
  elseif s then
    print(string.format("# %s -> %s", s, camgate.owner({"a", "b", "c"}, s)))
  end
end
"##);
    let text = read(&vectors_file());
    let expected: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && (!l.starts_with('#') || l.contains(" -> ")))
        .collect();
    let computed: Vec<&str> = computed.lines().collect();
    assert_eq!(computed, expected, "camgate.lua disagrees with the vectors");
    let scores: Vec<&str> = expected
        .iter()
        .filter(|l| !l.starts_with('#'))
        .copied()
        .collect();
    assert!(
        scores.len() >= 8 && expected.len() - scores.len() >= 10,
        "a meaningful set"
    );
    // The unsigned comparison matters: some scores have the top bit set, some not.
    let top_bits: BTreeSet<bool> = scores
        .iter()
        .map(|l| l.rsplit('\t').next().unwrap().as_bytes()[0] >= b'8')
        .collect();
    assert_eq!(
        top_bits.len(),
        2,
        "vectors cover scores on both sides of 2^63"
    );
}

/// The owner of each of `streams` among `members` by camgate.lua, as stream → owner.
fn lua_owners(members: &[&str], streams: &[String]) -> BTreeMap<String, String> {
    let list = |items: &[&str]| {
        items
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let streams: Vec<&str> = streams.iter().map(String::as_str).collect();
    let out = lua(&format!(
        "for _, s in ipairs({{{}}}) do print(s .. ' ' .. camgate.owner({{{}}}, s)) end",
        list(&streams),
        list(members)
    ));
    out.lines()
        .map(|l| {
            let (s, o) = l.split_once(' ').unwrap();
            (s.to_owned(), o.to_owned())
        })
        .collect()
}

/// The owner of each of `streams` among `members` by the gateway's own function.
fn gateway_owners(members: &[&str], streams: &[String]) -> BTreeMap<String, String> {
    streams
        .iter()
        .map(|s| {
            let owner = camgate::cluster::owner(members.iter().copied(), s).unwrap();
            (s.clone(), owner.to_owned())
        })
        .collect()
}

#[test]
fn lua_and_gateway_pick_the_same_owners() {
    // Beyond the vectors: many streams, member sets of 1 to 5 names of every shape.
    let streams: Vec<String> = (0..300)
        .map(|i| format!("cam-{i}"))
        .chain(["", "front", "a_b-c", "x"].map(String::from))
        .collect();
    let sets: [&[&str]; 5] = [
        &["solo"],
        &["a", "b"],
        &["camgate-0", "camgate-1", "camgate-2"],
        &["node.1", "node-2", "NODE_3", "n4"],
        &["a", "b", "c", "d", "e"],
    ];
    for members in sets {
        assert_eq!(
            lua_owners(members, &streams),
            gateway_owners(members, &streams),
            "members {members:?}"
        );
    }
}

#[test]
fn lua_finds_the_stream_of_exactly_the_stream_urls() {
    let out = lua(r#"
for _, p in ipairs({"/ws/streams/front", "/api/streams/front/mjpeg", "/api/streams/front/snapshot.jpg",
                    "/api/streams/front", "/api/streams", "/ws/streams/", "/api/streams/front/snapshotxjpg",
                    "/api/streams/front/retry", "/ws/streams/front/x", "/"}) do
  print(p .. " " .. tostring(camgate.stream_of(p)))
end
"#);
    let expected = "/ws/streams/front front\n/api/streams/front/mjpeg front\n\
        /api/streams/front/snapshot.jpg front\n/api/streams/front nil\n/api/streams nil\n\
        /ws/streams/ nil\n/api/streams/front/snapshotxjpg nil\n/api/streams/front/retry front\n\
        /ws/streams/front/x nil\n/ nil\n";
    assert_eq!(out, expected);
}

// ---------------------------------------------------------------------------------------
// HAProxy

/// Kills and reaps a child process on drop.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `haproxy -c -f cfg` with `env`; panics with its output unless the file is valid.
fn haproxy_check(cfg: &Path, env: &[(&str, &str)]) {
    let output = Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(cfg)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run haproxy ({e}): scripts/install-deps installs it"));
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} is not valid:\n{text}",
        cfg.display()
    );
    assert!(
        !text.contains("[WARNING]"),
        "{}: warnings:\n{text}",
        cfg.display()
    );
}

#[test]
fn haproxy_configurations_are_valid() {
    // The local file with its defaults and with the test's kind of values.
    let local = deploy().join("haproxy/haproxy.cfg");
    haproxy_check(&local, &[]);
    haproxy_check(
        &local,
        &[
            ("CAMGATE_LB_BIND", "127.0.0.1:18080"),
            ("CAMGATE_NODE_A", "127.0.0.1:18001"),
        ],
    );
    // Kubernetes': resolvers and per-pod DNS names (init-addr none: nothing is resolved).
    haproxy_check(
        &deploy().join("kubernetes/haproxy/haproxy.cfg"),
        &[("POD_NAMESPACE", "camgate"), ("CAMGATE_LB_BIND", ":8080")],
    );
}

/// A port that was free a moment ago (HAProxy binds it itself).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A stand-in gateway: answers `GET /readyz` 200 and any other request with its name (when
/// the balancer said who the client is: `X-Forwarded-For`).
struct Backend {
    addr: SocketAddr,
    tasks: JoinSet<()>,
}

impl Backend {
    async fn start(name: &'static str, addr: SocketAddr) -> Backend {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut tasks = JoinSet::new();
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let held = Arc::clone(&connections);
        tasks.spawn(async move {
            // Aborting this task drops the listener and (through `held`) every connection.
            let _held = held;
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    continue;
                };
                connections.lock().unwrap().spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let body = if head.starts_with("get /readyz ") {
                        format!("{{\"status\":\"ready\",\"node\":\"{name}\"}}")
                    } else if head.contains("\r\nx-forwarded-for: 127.0.0.1\r\n") {
                        name.to_owned()
                    } else {
                        format!("{name}, but without X-Forwarded-For")
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Backend { addr, tasks }
    }

    /// Dies like a killed process: the port refuses, open connections are reset.
    fn kill(mut self) {
        self.tasks.abort_all();
    }
}

/// HAProxy running the shipped local configuration, unchanged.
struct Haproxy {
    addr: SocketAddr,
    _child: ChildGuard,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(nodes: &[(&str, SocketAddr)]) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("haproxy.log");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut command = Command::new("/usr/bin/setpriv");
        command.args(["--pdeathsig", "KILL", "haproxy", "-f"]);
        command.arg(deploy().join("haproxy/haproxy.cfg"));
        command.env("CAMGATE_LB_BIND", addr.to_string());
        for (name, node) in nodes {
            command.env(
                format!("CAMGATE_NODE_{}", name.to_ascii_uppercase()),
                node.to_string(),
            );
        }
        let file = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run haproxy ({e}): scripts/install-deps"));
        Haproxy {
            addr,
            _child: ChildGuard(Some(child)),
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `request` ("METHOD path") through the balancer: the status and the answering
    /// backend's name (None when HAProxy is not listening yet).
    async fn send(&self, request: &str) -> Option<(u16, String)> {
        tokio::net::TcpStream::connect(self.addr).await.ok()?;
        let (method, path) = request.split_once(' ').unwrap();
        let (status, _, body) = http(self.addr, method, path, &[], None).await;
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Where each stream of `owners` lands now, through `url` ("METHOD path", `{}` = the
    /// stream id); panics on an answer that is not 200.
    async fn landings(
        &self,
        owners: &BTreeMap<String, String>,
        url: &str,
    ) -> BTreeMap<String, String> {
        let mut landed = BTreeMap::new();
        for stream in owners.keys() {
            let path = url.replace("{}", stream);
            let (status, body) = self.send(&path).await.expect("HAProxy listens");
            assert_eq!(
                status,
                200,
                "{path} through HAProxy: {body}\n{}",
                self.log()
            );
            landed.insert(stream.clone(), body);
        }
        landed
    }

    /// Polls until every stream of `owners` lands on its owner via `url`; the time it took.
    async fn until_owners(
        &self,
        owners: &BTreeMap<String, String>,
        url: &str,
        deadline: Duration,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if self.send("GET /haproxy-healthz").await.is_some() {
                let landed = self.landings(owners, url).await;
                if &landed == owners {
                    return start.elapsed();
                }
                if start.elapsed() > deadline {
                    let wrong: Vec<_> = owners
                        .iter()
                        .filter(|(s, o)| landed.get(*s) != Some(*o))
                        .map(|(s, o)| format!("{s}: owner {o}, landed on {}", landed[s]))
                        .collect();
                    panic!(
                        "not on their owners within {deadline:?}: {wrong:?}\n{}",
                        self.log()
                    );
                }
            } else {
                assert!(
                    start.elapsed() < deadline,
                    "HAProxy did not listen:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The requests HAProxy routes to a stream's owner (with and without a query).
const STREAM_URLS: [&str; 5] = [
    "GET /ws/streams/{}",
    "GET /ws/streams/{}?variant=sub&format=auto",
    "GET /api/streams/{}/mjpeg?variant=main",
    "GET /api/streams/{}/snapshot.jpg",
    "POST /api/streams/{}/retry",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_routes_each_stream_to_its_owner_and_fails_over() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let a = Backend::start("a", any).await;
    let b = Backend::start("b", any).await;
    let c = Backend::start("c", any).await;
    let b_addr = b.addr;
    let lb = Haproxy::start(&[("a", a.addr), ("b", b.addr), ("c", c.addr)]);

    // All three up: every stream URL form lands on the owner the gateways compute.
    let streams: Vec<String> = (0..20)
        .map(|i| format!("s{i}"))
        .chain(["front", "lobby", "yard"].map(String::from))
        .collect();
    let all = gateway_owners(&["a", "b", "c"], &streams);
    assert_eq!(
        all.values().collect::<BTreeSet<_>>().len(),
        3,
        "every node owns streams"
    );
    lb.until_owners(&all, STREAM_URLS[0], Duration::from_secs(15))
        .await;
    for url in STREAM_URLS {
        assert_eq!(lb.landings(&all, url).await, all, "{url}");
    }
    // Everything else: round-robin over the three.
    let mut seen = BTreeSet::new();
    for request in [
        "GET /api/streams",
        "GET /",
        "POST /api/session",
        "GET /api/streams/s00",
        "GET /ws/streams/s00/x",
        "GET /api/cluster",
    ] {
        let (status, name) = lb.send(request).await.unwrap();
        assert_eq!(status, 200);
        seen.insert(name);
    }
    assert_eq!(seen.len(), 3, "round-robin reaches every node: {seen:?}");

    // b dies: its streams go to their owner among a and c within the health-check
    // window (GET /readyz every 500 ms, 250 ms while failing, down after 3 failures: about
    // 1 s; the deadline leaves room for a busy machine), the others stay where they are,
    // and no request fails meanwhile (a refused connection is redispatched).
    let without_b = gateway_owners(&["a", "c"], &streams);
    assert!(all.values().any(|o| o == "b") && without_b.values().all(|o| o != "b"));
    b.kill();
    let moved = lb
        .until_owners(&without_b, STREAM_URLS[0], Duration::from_secs(3))
        .await;
    eprintln!("streams of the dead node on their new owners after {moved:?}");
    for url in STREAM_URLS {
        assert_eq!(lb.landings(&without_b, url).await, without_b, "{url}");
    }

    // b returns on the same address: its streams come back (2 good checks).
    let _b = Backend::start("b", b_addr).await;
    let back = lb
        .until_owners(&all, STREAM_URLS[0], Duration::from_secs(5))
        .await;
    eprintln!("streams back on the returned node after {back:?}");
    drop((a, c));
}

// ---------------------------------------------------------------------------------------
// Kubernetes

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

#[test]
fn kubernetes_haproxy_files_follow_the_local_ones() {
    // One Lua: the ConfigMap's copy is the shipped file, byte for byte.
    assert_eq!(
        read(&kube_dir().join("haproxy/camgate.lua")),
        read(&deploy().join("haproxy/camgate.lua")),
        "deploy/kubernetes/haproxy/camgate.lua must be a copy of deploy/haproxy/camgate.lua"
    );
    // The same routing: equal but for the servers, the resolvers, logging and the bind.
    let significant = |text: &str| -> Vec<String> {
        let mut lines = Vec::new();
        let mut in_resolvers = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("resolvers ") {
                in_resolvers = true;
            } else if ["global", "defaults", "frontend ", "backend "]
                .iter()
                .any(|s| line.starts_with(s))
            {
                in_resolvers = false;
            }
            let skipped = ["server ", "log ", "bind ", "default-server resolvers", "#"];
            if !in_resolvers && !line.is_empty() && !skipped.iter().any(|s| line.starts_with(s)) {
                lines.push(line.to_owned());
            }
        }
        lines
    };
    assert_eq!(
        significant(&read(&kube_dir().join("haproxy/haproxy.cfg"))),
        significant(&read(&deploy().join("haproxy/haproxy.cfg")))
    );
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
    // serviceName, lists ready pods only; node = POD_NAME = the pod's name.
    let headless = object(&objects, "Service/camgate-peers");
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], false);
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
