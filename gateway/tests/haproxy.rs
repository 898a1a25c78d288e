//! The balancer's files against real tools: `deploy/haproxy/camgate.lua` computes the
//! shared rendezvous test vectors (`gateway/tests/fixtures/rendezvous-vectors.txt`) under
//! `lua5.3`, and the same owners as the gateway's `cluster::owner` for many more; a real
//! HAProxy running the shipped `deploy/haproxy/haproxy.cfg` unchanged (addresses from its
//! environment variables) sends every stream URL (and a stream's retry) to the owner the
//! gateways compute among three loopback backends, round-robins the rest, and moves a dead
//! backend's streams to their new owner within the health-check window (and back when it
//! returns); both HAProxy configurations pass `haproxy -c`, and Kubernetes' follows the
//! local one (same Lua, same routing).
//!
//! Tools: Debian's `haproxy` and `lua5.3` (`scripts/install-deps`). Every child is killed
//! and reaped by a guard on drop (HAProxy also gets SIGKILL if the test thread dies:
//! `setpriv --pdeathsig`). Only 127.0.0.1 is bound; the Kubernetes configuration is only
//! checked, never run (its servers are cluster DNS names).

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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::haproxy::Haproxy;
use support::{deploy_dir as deploy, http, read_text as read, rtsp::workspace};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

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

impl Haproxy {
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

#[test]
fn kubernetes_haproxy_files_follow_the_local_ones() {
    // One Lua: the ConfigMap's copy is the shipped file, byte for byte.
    let kube_dir = deploy().join("kubernetes");
    assert_eq!(
        read(&kube_dir.join("haproxy/camgate.lua")),
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
        significant(&read(&kube_dir.join("haproxy/haproxy.cfg"))),
        significant(&read(&deploy().join("haproxy/haproxy.cfg")))
    );
}
