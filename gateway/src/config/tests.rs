//! End-to-end tests of [`super::parse`] / [`super::load`]: whole manifests in,
//! exact operator-facing messages out.
//!
//! Invariants: the process environment is never read or changed (a fake
//! lookup is injected), and messages are asserted verbatim so wording
//! changes are deliberate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::*;

/// Accepts `testsrc` (optional positive integer `width`) and `ffmpeg-mjpeg`
/// (needs an `rtsp://` `url`); everything else is unknown.
struct FakePlugins;

impl SourceValidator for FakePlugins {
    fn validate_source(&self, plugin: &str, options: &SourceOptions) -> Result<(), String> {
        match plugin {
            "testsrc" => match options.get("width") {
                Some(w) if !w.is_u64() => Err("`width` must be a positive integer".into()),
                _ => Ok(()),
            },
            "ffmpeg-mjpeg" => match options.get("url").and_then(|u| u.as_str()) {
                Some(url) if url.starts_with("rtsp://") => Ok(()),
                Some(_) => Err("`url` must start with rtsp://".into()),
                None => Err("ffmpeg-mjpeg needs `url`".into()),
            },
            other => Err(format!(
                "unknown source plugin `{other}` (known: ffmpeg-mjpeg, testsrc)"
            )),
        }
    }
}

/// A badly behaved plugin that echoes option values in its message.
struct LeakyPlugins;

impl SourceValidator for LeakyPlugins {
    fn validate_source(&self, _plugin: &str, options: &SourceOptions) -> Result<(), String> {
        Err(format!(
            "rejected options {}",
            serde_json::Value::Object(options.clone())
        ))
    }
}

const SECRET: &str = "pa55-TOP-SECRET";

fn env(name: &str) -> Option<String> {
    match name {
        "LOBBY_PASSWORD" | "SECRET" => Some(SECRET.to_owned()),
        "CAM_HOST" => Some("10.1.2.3".to_owned()),
        _ => None,
    }
}

fn run(text: &str) -> Result<Manifest, ConfigErrors> {
    parse(text, Path::new("m.yaml"), &env, &FakePlugins)
}

/// The error lines of a manifest that must fail.
fn errors(text: &str) -> Vec<String> {
    match run(text) {
        Ok(m) => panic!("expected errors, got {m:#?}"),
        Err(e) => e.errors().iter().map(ToString::to_string).collect(),
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests")
        .join(name)
}

fn loc(line: usize, column: usize) -> Location {
    Location {
        file: "m.yaml".into(),
        line,
        column,
    }
}

#[test]
fn good_manifest_loads_completely() {
    let path = fixture("good.yaml");
    let m = load(&path, &env, &FakePlugins).unwrap();
    let dir = path.parent().unwrap();
    assert_eq!(m.path, path);
    assert_eq!(m.server.listen, "127.0.0.1:8000".parse().unwrap());
    assert_eq!(
        m.server.allowed_origins,
        vec!["https://example.com", "http://localhost:5173"]
    );
    assert_eq!(m.plugins.dir, Some(dir.join("plugins")));
    assert_eq!(m.defaults.idle_timeout, Duration::from_secs(30));
    assert_eq!(m.streams.len(), 2);

    let lobby = &m.streams[0];
    assert_eq!(lobby.id, "lobby");
    assert_eq!(lobby.name, "Lobby camera");
    assert!(lobby.on_demand);
    assert_eq!(lobby.idle_timeout, Duration::from_secs(10));
    assert_eq!(lobby.source.plugin, "ffmpeg-mjpeg");
    assert_eq!(
        serde_json::Value::Object(lobby.source.options.clone()),
        json!({
            "url": "rtsp://127.0.0.1:8554/test",
            "username": "admin",
            "password": SECRET,
            "fps": 10,
        })
    );
    assert_eq!((lobby.location.line, lobby.location.column), (9, 5));
    assert_eq!(
        (lobby.source.location.line, lobby.source.location.column),
        (13, 5)
    );
    assert_eq!(lobby.location.file, path);

    let pattern = m.stream("pattern").unwrap();
    assert_eq!(pattern.name, "Test pattern");
    assert!(pattern.on_demand);
    // Inherited from `defaults`.
    assert_eq!(pattern.idle_timeout, Duration::from_secs(30));
    assert_eq!(
        serde_json::Value::Object(pattern.source.options.clone()),
        json!({ "width": 640, "height": 360, "fps": 10 })
    );
}

#[test]
fn defaults_apply_when_sections_are_missing() {
    let m = run("streams:\n  - id: cam\n    source: { plugin: testsrc }\n").unwrap();
    assert_eq!(m.server, ServerConfig::default());
    assert_eq!(m.server.listen, "127.0.0.1:8000".parse().unwrap());
    assert_eq!(m.plugins.dir, None);
    assert_eq!(m.defaults.idle_timeout, Duration::from_secs(30));
    let cam = &m.streams[0];
    assert_eq!(cam.name, "cam");
    assert!(cam.on_demand);
    assert_eq!(cam.idle_timeout, Duration::from_secs(30));
    assert!(cam.source.options.is_empty());
}

#[test]
fn empty_streams_are_fine() {
    for text in [
        "",
        "# nothing yet\n",
        "streams: []\n",
        "streams:\n",
        "server:\n  listen: 0.0.0.0:9000\n",
    ] {
        let m = run(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert!(m.streams.is_empty(), "{text:?}");
    }
}

#[test]
fn unknown_top_level_key() {
    assert_eq!(
        errors("server: {}\nstream: []\n"),
        vec![
            "m.yaml:2:1: unknown key `stream` at the top level; allowed keys: `server`, `plugins`, `defaults`, `auth`, `streams`, `cluster`"
        ]
    );
}

#[test]
fn unknown_key_in_server_plugins_defaults() {
    assert_eq!(
        errors(
            "server:\n  listen: 127.0.0.1:1\n  port: 80\nplugins:\n  path: x\ndefaults:\n  idle: 3s\n"
        ),
        vec![
            "m.yaml:3:3: unknown key `port` in `server`; allowed keys: `listen`, `allowed_origins`, `allowed_hosts`, `max_viewers_per_stream`, `api_streams_file`, `tls`",
            "m.yaml:5:3: unknown key `path` in `plugins`; allowed keys: `dir`",
            "m.yaml:7:3: unknown key `idle` in `defaults`; allowed keys: `idle_timeout`",
        ]
    );
}

#[test]
fn unknown_key_in_stream_with_source_hint() {
    assert_eq!(
        errors(
            "streams:\n  - id: a\n    url: rtsp://x\n    ondemand: true\n    source: { plugin: testsrc }\n"
        ),
        vec![
            "m.yaml:3:5: unknown key `url` in a stream; allowed keys: `id`, `name`, `on_demand`, `idle_timeout`, `health_rules`, `source`, `sub`; source plugin options go under `source:`",
            "m.yaml:4:5: unknown key `ondemand` in a stream; allowed keys: `id`, `name`, `on_demand`, `idle_timeout`, `health_rules`, `source`, `sub`",
        ]
    );
}

#[test]
fn health_thresholds_default_per_key_and_bad_values_are_errors_with_positions() {
    let m = run(concat!(
        "streams:\n",
        "  - id: a\n",
        "    health_rules: { frozen_after: 30s, dark_luma: 12.5 }\n",
        "    source: { plugin: testsrc }\n",
        "  - id: b\n",
        "    source: { plugin: testsrc }\n",
    ))
    .unwrap();
    let a = &m.streams[0].health;
    assert_eq!(a.frozen_after, std::time::Duration::from_secs(30));
    assert_eq!(a.dark_luma, 12.5);
    assert_eq!(a.dark_after, crate::hub::HealthRules::DEFAULT.dark_after);
    assert_eq!(m.streams[1].health, crate::hub::HealthRules::DEFAULT);
    assert_eq!(
        errors(concat!(
            "streams:\n",
            "  - id: a\n",
            "    health_rules:\n",
            "      frozen_after: 0s\n",
            "      dark_luma: 300\n",
            "      min_fps_ratio: high\n",
            "      late: 2s\n",
            "      enabled: yes\n",
            "    source: { plugin: testsrc }\n",
        )),
        vec![
            "m.yaml:4:21: `frozen_after` must be longer than 0s (use `enabled: false` to stop judging this stream)",
            "m.yaml:5:18: `dark_luma` must be from 0 to 255, found 300",
            "m.yaml:6:22: `min_fps_ratio` must be a number from 0 to 1, found a string",
            "m.yaml:7:7: unknown key `late` in `health_rules`; allowed keys: `enabled`, `frozen_after`, `dark_after`, `dark_luma`, `late_after`, `min_fps_ratio`",
            "m.yaml:8:16: `enabled` must be true or false, found a string",
        ]
    );
}

#[test]
fn unknown_keys_inside_source_go_to_the_plugin() {
    let m = run(
        "streams:\n  - id: a\n    source:\n      plugin: testsrc\n      whatever: {nested: [1, 2.5, true, null, x]}\n",
    )
    .unwrap();
    assert_eq!(
        m.streams[0].source.options["whatever"],
        json!({"nested": [1, 2.5, true, null, "x"]})
    );
}

#[test]
fn wrong_types_have_positions() {
    assert_eq!(
        errors(
            "server:\n  listen: 12\n  allowed_origins: https://a.example\nstreams:\n  - id: a\n    on_demand: maybe\n    name: [x]\n    source: { plugin: testsrc }\n"
        ),
        vec![
            "m.yaml:2:11: `listen` must be a string, found an integer (quote it to use it as text)",
            "m.yaml:3:20: `allowed_origins` must be a list, found a string",
            "m.yaml:6:16: `on_demand` must be true or false, found a string",
            "m.yaml:7:11: `name` must be a string, found a list",
        ]
    );
}

#[test]
fn yaml_1_1_booleans_are_not_booleans() {
    assert_eq!(
        errors("streams:\n  - id: a\n    on_demand: yes\n    source: { plugin: testsrc }\n"),
        vec!["m.yaml:3:16: `on_demand` must be true or false, found a string"]
    );
}

#[test]
fn bad_listen_address() {
    assert_eq!(
        errors("server:\n  listen: localhost:8000\n"),
        vec![
            "m.yaml:2:11: `listen` must be an IP address and port like `127.0.0.1:8000` or `[::]:8000` (host names are not resolved); found `localhost:8000`"
        ]
    );
    let m = run("server:\n  listen: \"[::1]:8443\"\n").unwrap();
    assert_eq!(m.server.listen, "[::1]:8443".parse().unwrap());
}

#[test]
fn bad_allowed_origins() {
    assert_eq!(
        errors(
            "server:\n  allowed_origins:\n    - https://ok.example:8443\n    - https://bad.example/\n    - \"*\"\n    - https://u:pw@h\n"
        ),
        vec![
            "m.yaml:4:7: allowed origin must be `http(s)://host[:port]` without path or trailing slash, like `https://example.com`, found `https://bad.example/`",
            "m.yaml:5:7: allowed origin must be `http(s)://host[:port]` without path or trailing slash, like `https://example.com`, found `*`",
            "m.yaml:6:7: allowed origin must be `http(s)://host[:port]` without path or trailing slash, like `https://example.com`",
        ]
    );
}

#[test]
fn allowed_hosts_are_host_names_with_an_optional_port() {
    let m = run(
        "server:\n  allowed_hosts: [Cams.Example.com, \"cams.example.com:8443\", \"[fd00::5]:80\", 10.0.0.5]\n",
    )
    .unwrap();
    assert_eq!(
        m.server.allowed_hosts,
        vec![
            "cams.example.com",
            "cams.example.com:8443",
            "[fd00::5]:80",
            "10.0.0.5"
        ]
    );
    let bad = errors(
        "server:\n  allowed_hosts:\n    - http://cams.example.com\n    - cams.example.com/x\n    - \"*\"\n    - \"a:b\"\n    - \"\"\n",
    );
    assert_eq!(bad.len(), 5, "{bad:?}");
    assert!(
        bad.iter().all(|e| e.contains("allowed host must be")),
        "{bad:?}"
    );
}

#[test]
fn duplicate_id_names_both_lines() {
    assert_eq!(
        errors(
            "streams:\n  - id: cam\n    source: { plugin: testsrc }\n  - id: other\n    source: { plugin: testsrc }\n  - id: cam\n    source: { plugin: testsrc }\n"
        ),
        vec!["m.yaml:6:9: duplicate stream id `cam`: first defined at line 2, column 9"]
    );
}

#[test]
fn bad_id_characters_and_lengths() {
    let long = "a".repeat(65);
    let text = format!(
        "streams:\n  - id: Lobby Cam\n    source: {{ plugin: testsrc }}\n  - id: \"\"\n    source: {{ plugin: testsrc }}\n  - id: {long}\n    source: {{ plugin: testsrc }}\n  - id: 42\n    source: {{ plugin: testsrc }}\n  - source: {{ plugin: testsrc }}\n"
    );
    assert_eq!(
        errors(&text),
        vec![
            "m.yaml:2:9: stream id `Lobby Cam` may only contain lowercase letters a-z, digits, `_` and `-` (it is used in URLs)",
            "m.yaml:4:9: stream `id` must not be empty",
            "m.yaml:6:9: stream `id` is 65 characters long; at most 64 are allowed",
            "m.yaml:8:9: `id` must be a string, found an integer (quote it to use it as text)",
            "m.yaml:10:5: stream is missing `id`",
        ]
    );
    // Quoted digits are a fine id.
    assert_eq!(
        run("streams:\n  - id: \"42\"\n    source: { plugin: testsrc }\n")
            .unwrap()
            .streams[0]
            .id,
        "42"
    );
}

#[test]
fn name_rules() {
    let long = "n".repeat(201);
    let text = format!(
        "streams:\n  - id: a\n    name: {long}\n    source: {{ plugin: testsrc }}\n  - id: b\n    name: \"  \"\n    source: {{ plugin: testsrc }}\n"
    );
    assert_eq!(
        errors(&text),
        vec![
            "m.yaml:3:11: stream `name` is 201 characters long; at most 200 are allowed",
            "m.yaml:6:11: stream `name` must not be empty (omit it to use the id)",
        ]
    );
    let ok = format!(
        "streams:\n  - id: a\n    name: {}\n    source: {{ plugin: testsrc }}\n",
        "é".repeat(200)
    );
    assert_eq!(run(&ok).unwrap().streams[0].name.chars().count(), 200);
}

#[test]
fn missing_source_and_plugin() {
    assert_eq!(
        errors(
            "streams:\n  - id: a\n  - id: b\n    source:\n      url: rtsp://x\n  - id: c\n    source: rtsp://x\n  - id: d\n    source:\n      plugin: 7\n"
        ),
        vec![
            "m.yaml:2:5: stream is missing `source` (a mapping with at least `plugin`)",
            "m.yaml:4:5: `source` is missing `plugin` (the name of the source plugin, e.g. `testsrc`)",
            "m.yaml:7:13: `source` must be a mapping with at least `plugin`, found a string",
            "m.yaml:10:15: `plugin` must be a string, found an integer (quote it to use it as text)",
        ]
    );
}

#[test]
fn unknown_plugin_is_reported_at_the_source_key() {
    assert_eq!(
        errors("streams:\n  - id: a\n    source:\n      plugin: rtmp\n"),
        vec!["m.yaml:3:5: unknown source plugin `rtmp` (known: ffmpeg-mjpeg, testsrc)"]
    );
}

#[test]
fn plugin_rejection_is_prefixed_with_location() {
    let err = run("streams:\n  - id: a\n    source:\n      plugin: testsrc\n      width: wide\n")
        .unwrap_err();
    assert_eq!(err.errors().len(), 1);
    assert_eq!(
        err.errors()[0].location,
        Some(loc(3, 5)),
        "location of the `source:` key"
    );
    assert_eq!(
        err.to_string(),
        "m.yaml:3:5: `width` must be a positive integer"
    );
}

#[test]
fn non_string_option_keys_are_errors() {
    assert_eq!(
        errors(
            "streams:\n  - id: a\n    source:\n      plugin: testsrc\n      1: x\n      m: {true: 1}\n"
        ),
        vec![
            "m.yaml:5:7: keys must be strings, found an integer",
            "m.yaml:6:11: keys must be strings, found a boolean",
        ]
    );
}

#[test]
fn substitution_everywhere_with_defaults() {
    let m = run(concat!(
        "server:\n  listen: ${LISTEN:-127.0.0.1:9000}\n",
        "streams:\n",
        "  - id: ${CAM_ID:-door}\n",
        "    idle_timeout: ${IDLE:-5s}\n",
        "    source:\n",
        "      plugin: ffmpeg-mjpeg\n",
        "      url: rtsp://${CAM_HOST}:554/main\n",
        "      password: ${SECRET}\n",
        "      list: [\"${CAM_HOST}\", 5]\n",
        "      literal: \"$${NOT_A_VAR} costs $5\"\n",
    ))
    .unwrap();
    assert_eq!(m.server.listen, "127.0.0.1:9000".parse().unwrap());
    let door = &m.streams[0];
    assert_eq!(door.id, "door");
    assert_eq!(door.idle_timeout, Duration::from_secs(5));
    assert_eq!(
        serde_json::Value::Object(door.source.options.clone()),
        json!({
            "url": "rtsp://10.1.2.3:554/main",
            "password": SECRET,
            "list": ["10.1.2.3", 5],
            "literal": "${NOT_A_VAR} costs $5",
        })
    );
}

#[test]
fn substituted_value_cannot_inject_yaml() {
    let evil = |name: &str| (name == "EVIL").then(|| "x\n  plugin: other\n{a: b}".to_owned());
    let m = parse(
        "streams:\n  - id: a\n    source:\n      plugin: testsrc\n      label: ${EVIL}\n",
        Path::new("m.yaml"),
        &evil,
        &FakePlugins,
    )
    .unwrap();
    assert_eq!(m.streams[0].source.plugin, "testsrc");
    assert_eq!(
        m.streams[0].source.options["label"],
        json!("x\n  plugin: other\n{a: b}")
    );
}

#[test]
fn unset_variable_is_named_with_location() {
    assert_eq!(
        errors(
            "streams:\n  - id: a\n    source:\n      plugin: ffmpeg-mjpeg\n      url: rtsp://cam\n      password: ${CAM_PASSWORD}\n"
        ),
        vec![
            "m.yaml:6:17: environment variable `CAM_PASSWORD` is not set (write `${CAM_PASSWORD:-default}` to give a default)"
        ]
    );
    assert_eq!(
        errors("server:\n  listen: ${LISTEN\n"),
        vec![
            "m.yaml:2:11: unterminated `${`: expected `${NAME}` or `${NAME:-default}` (write `$${` for a literal `${`)"
        ]
    );
}

#[test]
fn secrets_never_appear_in_errors() {
    let text = concat!(
        "server:\n  listen: ${SECRET}\n",
        "  allowed_origins: [\"${SECRET}\"]\n",
        "defaults:\n  idle_timeout: ${SECRET}\n",
        "streams:\n",
        "  - id: ${SECRET}\n",
        "    name: ${SECRET}${SECRET}${SECRET}${SECRET}${SECRET}${SECRET}${SECRET}${SECRET}${SECRET}${SECRET}${SECRET}${SECRET}${SECRET}${SECRET}\n",
        "    source:\n",
        "      plugin: ffmpeg-mjpeg\n",
        "      url: ${SECRET}\n",
        "  - id: ${SECRET}\n",
        "    source: { plugin: testsrc }\n",
    );
    let err = run(text).unwrap_err();
    let shown = err.to_string();
    assert_eq!(
        shown,
        [
            "m.yaml:2:11: `listen` must be an IP address and port like `127.0.0.1:8000` or `[::]:8000` (host names are not resolved); the value from the environment is not one",
            "m.yaml:3:21: allowed origin must be `http(s)://host[:port]` without path or trailing slash, like `https://example.com`",
            "m.yaml:5:17: `idle_timeout`: the value from the environment is not a duration like `30s`",
            "m.yaml:7:9: stream id may only contain lowercase letters a-z, digits, `_` and `-` (it is used in URLs)",
            "m.yaml:8:11: stream `name` is 210 characters long; at most 200 are allowed",
            "m.yaml:9:5: `url` must start with rtsp://",
            "m.yaml:12:9: stream id may only contain lowercase letters a-z, digits, `_` and `-` (it is used in URLs)",
            "m.yaml:12:9: duplicate stream id: first defined at line 7, column 9",
        ]
        .join("\n")
    );
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains("TOP"), "{shown}");

    let leaky = parse(
        "streams:\n  - id: a\n    source:\n      plugin: x\n      password: ${SECRET}\n",
        Path::new("m.yaml"),
        &env,
        &LeakyPlugins,
    )
    .unwrap_err();
    assert_eq!(
        leaky.to_string(),
        "m.yaml:3:5: rejected options {\"password\":\"***\"}"
    );
}

#[test]
fn duration_errors() {
    assert_eq!(
        errors(concat!(
            "defaults:\n  idle_timeout: 30\n",
            "streams:\n",
            "  - id: a\n    idle_timeout: 0s\n    source: { plugin: testsrc }\n",
            "  - id: b\n    idle_timeout: 25h\n    source: { plugin: testsrc }\n",
            "  - id: c\n    idle_timeout: 10 minutes\n    source: { plugin: testsrc }\n",
            "  - id: d\n    idle_timeout: 1.5\n    source: { plugin: testsrc }\n",
        )),
        vec![
            "m.yaml:2:17: `idle_timeout` needs a unit: write `30s` (or ms, m, h)",
            "m.yaml:5:19: `idle_timeout` must be greater than 0",
            "m.yaml:8:19: `idle_timeout` must be at most 24h",
            "m.yaml:11:19: `idle_timeout`: unknown duration unit: expected a whole number with a unit (ms, s, m, h), like `30s`, `500ms`, `2m` or `1h`",
            "m.yaml:14:19: `idle_timeout` must be a duration like `30s`, `500ms`, `2m` or `1h`, found a floating-point number",
        ]
    );
    let m = run("defaults:\n  idle_timeout: 1h30m\n").unwrap();
    assert_eq!(m.defaults.idle_timeout, Duration::from_secs(5400));
    let m = run("defaults:\n  idle_timeout: 24h\n").unwrap();
    assert_eq!(m.defaults.idle_timeout, MAX_IDLE_TIMEOUT);
}

#[test]
fn many_problems_are_reported_together_in_file_order() {
    let path = fixture("many-problems.yaml");
    let err = load(&path, &env, &FakePlugins).unwrap_err();
    let p = path.display();
    let expected = [
        format!(
            "{p}:3:3: unknown key `colour` in `server`; allowed keys: `listen`, `allowed_origins`, `allowed_hosts`, `max_viewers_per_stream`, `api_streams_file`, `tls`"
        ),
        format!("{p}:5:17: `idle_timeout` must be greater than 0"),
        format!(
            "{p}:7:9: stream id `Lobby Cam` may only contain lowercase letters a-z, digits, `_` and `-` (it is used in URLs)"
        ),
        format!("{p}:8:16: `on_demand` must be true or false, found a string"),
        format!(
            "{p}:11:17: environment variable `CAM_PASSWORD` is not set (write `${{CAM_PASSWORD:-default}}` to give a default)"
        ),
        format!("{p}:13:19: `idle_timeout` must be at most 24h"),
        format!("{p}:14:5: unknown source plugin `nope` (known: ffmpeg-mjpeg, testsrc)"),
        format!("{p}:16:9: duplicate stream id `yard`: first defined at line 12, column 9"),
        format!(
            "{p}:17:5: `source` is missing `plugin` (the name of the source plugin, e.g. `testsrc`)"
        ),
    ];
    assert_eq!(err.to_string(), expected.join("\n"));
}

#[test]
fn yaml_syntax_error_has_position() {
    assert_eq!(
        errors("streams:\n  - id: a\n    source: {plugin: testsrc\n"),
        errors("streams:\n  - id: a\n    source: {plugin: testsrc\n"),
    );
    let e = errors("server:\n  listen: \"127.0.0.1:8000\n");
    assert_eq!(e, vec!["m.yaml:2:11: invalid YAML: unclosed quote"]);
    assert_eq!(
        errors("streams:\n  - id: a\n    id: b\n    source: { plugin: testsrc }\n"),
        vec!["m.yaml:3:5: invalid YAML: duplicate mapping key `id` is not allowed here"]
    );
    assert_eq!(
        errors("- just\n- a list\n"),
        vec!["m.yaml:1:1: the manifest must be a mapping, found a list"]
    );
}

#[test]
fn plugins_dir_resolves_against_manifest_dir() {
    let m = parse(
        "plugins:\n  dir: ./extra/../plugins\n",
        Path::new("/etc/camgate/cams.yaml"),
        &env,
        &FakePlugins,
    )
    .unwrap();
    assert_eq!(
        m.plugins.dir,
        Some(PathBuf::from("/etc/camgate/extra/../plugins"))
    );
    let m = parse(
        "plugins:\n  dir: /opt/camgate/plugins\n",
        Path::new("/etc/camgate/cams.yaml"),
        &env,
        &FakePlugins,
    )
    .unwrap();
    assert_eq!(m.plugins.dir, Some(PathBuf::from("/opt/camgate/plugins")));
    assert_eq!(
        errors("plugins:\n  dir: \"\"\n"),
        vec!["m.yaml:2:8: `dir` must not be empty (omit it to use no plugin directory)"]
    );
}

#[test]
fn equality_ignores_positions_for_hot_reload_diffs() {
    let a = run("streams:\n  - id: a\n    source: { plugin: testsrc, fps: 5 }\n").unwrap();
    let b = run(
        "\n\n# moved down\nstreams:\n  - id: a\n    source:\n      plugin: testsrc\n      fps: 5\n",
    )
    .unwrap();
    assert_ne!(a.streams[0].location, b.streams[0].location);
    assert_eq!(a.streams[0], b.streams[0]);
    assert_eq!(a, b);
    let c = run("streams:\n  - id: a\n    source: { plugin: testsrc, fps: 6 }\n").unwrap();
    assert_ne!(a.streams[0], c.streams[0]);
}

#[test]
fn unreadable_file_is_one_error_without_location() {
    let err = load(Path::new("/nonexistent/cams.yaml"), &env, &FakePlugins).unwrap_err();
    assert_eq!(err.errors().len(), 1);
    assert_eq!(err.errors()[0].location, None);
    assert!(
        err.to_string()
            .starts_with("cannot read manifest /nonexistent/cams.yaml: "),
        "{err}"
    );
}

#[test]
fn anchors_and_merge_keys_work() {
    let m = run(concat!(
        "x-cam: &cam\n",
        "  plugin: ffmpeg-mjpeg\n",
        "  username: admin\n",
        "streams:\n",
        "  - id: a\n",
        "    source:\n",
        "      <<: *cam\n",
        "      url: rtsp://a\n",
    ));
    // Top-level extension keys are not allowed (strict), but merges are.
    assert_eq!(
        m.unwrap_err().to_string(),
        "m.yaml:1:1: unknown key `x-cam` at the top level; allowed keys: `server`, `plugins`, `defaults`, `auth`, `streams`, `cluster`"
    );
    let m = run(concat!(
        "streams:\n",
        "  - id: a\n",
        "    source: &cam\n",
        "      plugin: ffmpeg-mjpeg\n",
        "      url: rtsp://a\n",
        "  - id: b\n",
        "    source:\n",
        "      <<: *cam\n",
        "      url: rtsp://b\n",
    ))
    .unwrap();
    assert_eq!(m.streams[1].source.plugin, "ffmpeg-mjpeg");
    assert_eq!(m.streams[1].source.options["url"], json!("rtsp://b"));
}

#[test]
fn configuration_reference_matches_the_parser() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    // Rows of the "Keys" table: | `key` | ...
    let section = doc
        .split("## Keys")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/configuration.md has a Keys section");
    let documented: Vec<String> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|line| line.split('`').next())
        .map(str::to_owned)
        .collect();
    let mut expected = super::documented_keys();
    let mut found = documented.clone();
    expected.sort();
    found.sort();
    assert_eq!(
        found, expected,
        "docs/configuration.md's key table must list exactly the keys the parser knows"
    );
}

#[test]
fn auth_tokens_are_checked_and_never_echoed() {
    let text = "auth:\n  tokens:\n    - role: admin\n      token: ${ADMIN}\n    - role: viewer\n      token: tiny-tok\n    - role: viewer\n      token: ${ADMIN}\n      streams: [lobby, ghost]\n    - role: boss\n      token: xxxxxxxxxxxxxxxxxxxxxxxx\n    - role: viewer\n      token: yyyyyyyyyyyyyyyyyyyy\n      token_file: /nope\nstreams:\n  - id: lobby\n    source: { plugin: testsrc }\n";
    let env = |name: &str| (name == "ADMIN").then(|| "admin-secret-value-123".to_owned());
    let err = super::parse(text, Path::new("m.yaml"), &env, &FakePlugins)
        .unwrap_err()
        .to_string();
    assert!(err.contains("m.yaml:5:7: auth token is too short"), "{err}");
    assert!(
        err.contains("m.yaml:7:7: this auth token has the same value as the one at line 3"),
        "{err}"
    );
    assert!(
        err.contains("m.yaml:9:24: `streams` names unknown stream `ghost`"),
        "{err}"
    );
    assert!(
        err.contains("m.yaml:10:13: `role` must be `admin`, `viewer` or `metrics`"),
        "{err}"
    );
    assert!(err.contains("cannot read token_file"), "{err}");
    assert!(
        err.contains("exactly one of `token` and `token_file`"),
        "{err}"
    );
    assert!(
        !err.contains("admin-secret-value-123") && !err.contains("tiny-tok"),
        "{err}"
    );

    let good = "auth:\n  tokens:\n    - role: admin\n      token: ${ADMIN}\n    - role: viewer\n      token: viewer-secret-0123456789\n      streams: [lobby]\n    - role: metrics\n      token: metrics-secret-0123456789\nstreams:\n  - id: lobby\n    source: { plugin: testsrc }\n";
    let manifest = super::parse(good, Path::new("m.yaml"), &env, &FakePlugins).unwrap();
    assert!(manifest.auth.enabled());
    assert_eq!(
        manifest.auth.tokens[1].streams.as_deref(),
        Some(&["lobby".to_owned()][..])
    );
    assert_eq!(manifest.auth.tokens[2].role, crate::config::Role::Metrics);
    assert!(!format!("{:?}", manifest.auth).contains("admin-secret-value-123"));
    let scoped_metrics = "auth:\n  tokens:\n    - role: metrics\n      token: metrics-secret-0123456789\n      streams: [lobby]\nstreams:\n  - id: lobby\n    source: { plugin: testsrc }\n";
    let err = super::parse(scoped_metrics, Path::new("m.yaml"), &env, &FakePlugins)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`streams` limits viewer tokens only"), "{err}");
}

#[test]
fn sub_takes_a_url_or_a_derived_size() {
    let m = run("streams:\n  - id: cam\n    source: { plugin: ffmpeg-mjpeg, url: \"rtsp://cam/101\", password: \"${SECRET}\" }\n    sub: { url: \"rtsp://cam/102\" }\n  - id: pattern\n    source: { plugin: testsrc }\n    sub: { width: 640 }\n  - id: sized\n    source: { plugin: testsrc }\n    sub: { width: 320, height: 240, quality: 8, fps: 5 }\n  - id: plain\n    source: { plugin: testsrc }\n").unwrap();
    let Some(SubConfig::Url(source)) = &m.streams[0].sub else {
        panic!("{:?}", m.streams[0].sub);
    };
    // The main source's plugin and options, `url` replaced.
    assert_eq!(source.plugin, "ffmpeg-mjpeg");
    assert_eq!(
        serde_json::Value::Object(source.options.clone()),
        json!({ "url": "rtsp://cam/102", "password": SECRET })
    );
    assert_eq!((source.location.line, source.location.column), (4, 5));
    assert_eq!(
        m.streams[1].sub,
        Some(SubConfig::Derived(DerivedSub {
            width: 640,
            height: None,
            quality: DEFAULT_SUB_QUALITY,
            fps: None,
        }))
    );
    assert_eq!(
        m.streams[2].sub,
        Some(SubConfig::Derived(DerivedSub {
            width: 320,
            height: Some(240),
            quality: 8,
            fps: Some(5),
        }))
    );
    assert_eq!(m.streams[3].sub, None);
}

#[test]
fn bad_subs_are_errors_at_their_position() {
    let text = "streams:\n  - id: pattern\n    source: { plugin: testsrc }\n    sub: { url: \"rtsp://cam/102\" }\n  - id: both\n    source: { plugin: ffmpeg-mjpeg, url: \"rtsp://cam/101\" }\n    sub: { url: \"rtsp://cam/102\", width: 640 }\n  - id: odd\n    source: { plugin: testsrc }\n    sub: { width: 641, height: 8, quality: 1 }\n  - id: empty\n    source: { plugin: testsrc }\n    sub: { height: 360 }\n  - id: nothing\n    source: { plugin: testsrc }\n    sub: {}\n  - id: scheme\n    source: { plugin: ffmpeg-mjpeg, url: \"rtsp://cam/101\" }\n    sub: { url: \"http://${SECRET}@cam/102\", codec: h264 }\n  - id: typed\n    source: { plugin: testsrc }\n    sub: { width: \"640\" }\n";
    assert_eq!(
        errors(text),
        [
            "m.yaml:4:17: `sub.url` replaces the source's `url`, but plugin `testsrc` takes none here; derive the sub in the gateway instead (`sub: { width: 640 }`)",
            "m.yaml:7:35: `sub` takes either `url` (the camera's own sub-stream) or `width` (with optional `height`, `quality` and `fps`: derived in the gateway), not both",
            "m.yaml:10:19: `width` must be an even number of pixels, found 641",
            "m.yaml:10:32: `height` must be from 16 to 7680, found 8",
            "m.yaml:10:44: `quality` must be from 2 to 31, found 1",
            "m.yaml:13:10: `sub` is missing `width` (the derived picture's width in pixels, e.g. 640)",
            "m.yaml:16:10: `sub` needs `url` (the camera's own sub-stream) or `width` (derived in the gateway, e.g. `width: 640`)",
            "m.yaml:19:5: `sub`: `url` must start with rtsp://",
            "m.yaml:19:45: unknown key `codec` in `sub`; allowed keys: `url`, `width`, `height`, `quality`, `fps`",
            "m.yaml:22:19: `width` must be an integer from 16 to 7680, found a string",
        ]
    );
}

#[test]
fn a_cluster_section_loads_both_forms() {
    let m = run("cluster:\n  node: b\n  members:\n    - {name: a, url: 'http://10.0.0.1:8000'}\n    - {name: b, url: 'http://10.0.0.2:8000/'}\n").unwrap();
    let cluster = m.cluster.unwrap();
    assert_eq!(cluster.node, "b");
    assert_eq!(cluster.probe_interval, DEFAULT_PROBE_INTERVAL);
    assert_eq!(
        cluster.membership,
        Membership::Static(vec![
            Member {
                name: "a".into(),
                authority: "10.0.0.1:8000".into()
            },
            Member {
                name: "b".into(),
                authority: "10.0.0.2:8000".into()
            },
        ])
    );
    let m = run("cluster: {node: camgate-0, members_dns: peers.cams.svc.cluster.local, port: 8000, probe_interval: 500ms}\n").unwrap();
    let cluster = m.cluster.unwrap();
    assert_eq!(
        cluster.membership,
        Membership::Dns {
            name: "peers.cams.svc.cluster.local".into(),
            port: 8000
        }
    );
    assert_eq!(cluster.probe_interval, Duration::from_millis(500));
    assert!(run("streams: []\n").unwrap().cluster.is_none());
    // Members reach a node by the host of its URL: a name there is one the node answers to.
    let m = run("cluster:\n  node: b\n  members:\n    - {name: a, url: 'http://gw-a.lan:8000'}\n    - {name: b, url: 'http://GW-B.lan:8000'}\n").unwrap();
    assert_eq!(m.server.allowed_hosts, ["gw-b.lan:8000"]);
}

#[test]
fn cluster_mistakes_are_errors_at_their_place() {
    assert_eq!(
        errors("cluster:\n  members: [{name: a, url: 'http://h:1'}]\n"),
        vec!["m.yaml:1:1: `cluster` needs `node`: this node's name (e.g. `node: ${POD_NAME}`)"]
    );
    assert_eq!(
        errors(
            "cluster:\n  node: c\n  members:\n    - {name: a, url: 'https://h:1'}\n    - {name: a, url: 'http://h:2'}\n    - {name: b, url: 'http://h'}\n"
        ),
        vec![
            "m.yaml:3:3: this node (`c`) is not among `cluster.members`: list every node, this one included",
            "m.yaml:4:22: member `url` must start with `http://` (nodes talk plain HTTP among themselves; TLS ends at the balancer)",
            "m.yaml:5:14: member `a` is listed twice",
            "m.yaml:6:22: member `url` must be `http://host:port` with nothing after the port",
        ]
    );
    assert_eq!(
        errors("cluster: {node: a, members_dns: peers}\n"),
        vec!["m.yaml:1:33: `members_dns` needs `port`: the port every member listens on"]
    );
    assert_eq!(
        errors("cluster: {node: 'a b', members_dns: peers, members: [], port: 1}\n"),
        vec![
            "m.yaml:1:17: `node` may only contain letters, digits, `.`, `_` and `-` (it is a server name in the balancer's configuration)",
            "m.yaml:1:37: `cluster` takes either `members` (a fixed list) or `members_dns` (a name that lists the ready members), not both",
        ]
    );
}

#[test]
fn a_cluster_with_authentication_needs_a_token_that_sees_every_stream() {
    let tokens = "auth:\n  tokens:\n    - {role: viewer, token: viewer-token-0123456789, streams: [s]}\n    - {role: metrics, token: metrics-token-0123456789}\nstreams:\n  - {id: s, source: {plugin: testsrc}}\n";
    assert_eq!(
        errors(&format!(
            "{tokens}cluster: {{node: a, members_dns: p, port: 1}}\n"
        )),
        vec![
            "m.yaml:7:1: `cluster` needs `token` when `auth.tokens` is set: nodes relay each other's streams with it (a viewer token without `streams`, or an admin token)"
        ]
    );
    // The restricted viewer's token does not do, and the message never shows it.
    let errs = errors(&format!(
        "{tokens}cluster: {{node: a, members_dns: p, port: 1, token: viewer-token-0123456789}}\n"
    ));
    assert_eq!(
        errs,
        vec![
            "m.yaml:7:52: `token` must be one of `auth.tokens`: a viewer token without `streams`, or an admin token"
        ]
    );
    assert!(errs.iter().all(|e| !e.contains("viewer-token")));
    let ok = run("auth:\n  tokens:\n    - {role: admin, token: admin-token-0123456789}\ncluster: {node: a, members_dns: p, port: 1, token: admin-token-0123456789}\n").unwrap();
    assert_eq!(
        ok.cluster.unwrap().token.unwrap().expose(),
        "admin-token-0123456789"
    );
}
