//! `GET /api/openapi.json`: an OpenAPI 3.1 description of every endpoint.
//!
//! Invariant: it describes exactly the routes of `router::ROUTES` (a test compares them),
//! so the document cannot silently drift from the server.

use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::response::{self, Body};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}})
}

fn max_fps_param() -> Value {
    json!({"name": "max_fps", "in": "query", "required": false, "description": "Per-viewer rate cap (0 < n <= 120).", "schema": {"type": "number"}})
}

fn variant_param() -> Value {
    json!({"name": "variant", "in": "query", "required": false, "description": "Which picture stream: main (default) or sub (the stream's low-resolution variant, JPEG frames; listed in the stream's `variants`). Another value: 400 bad_query; sub on a stream without one: 404 no_such_variant.", "schema": {"enum": ["main", "sub"], "default": "main"}})
}

fn sub_schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "description": "The low-resolution variant: either {url} (the camera's own sub-stream: the source with `url` replaced; a URL password is masked like source.url and kept on update when sent back masked) or {width, height?, quality?, fps?} (an MJPEG derived in the gateway from the main stream; even sizes, height keeps the aspect ratio when omitted, quality 2 best..31, default 5, fps: at most this many pictures a second, default the main's rate).", "properties": {
        "url": {"type": "string"}, "width": {"type": "integer", "minimum": 16, "maximum": 7680}, "height": {"type": "integer", "minimum": 16, "maximum": 7680}, "quality": {"type": "integer", "minimum": 2, "maximum": 31, "default": 5}, "fps": {"type": "integer", "minimum": 1, "maximum": 120}}})
}

fn access_token_param() -> Value {
    json!({"name": "access_token", "in": "query", "required": false, "description": "A token, for clients that can send neither a header nor the session cookie.", "schema": {"type": "string"}})
}

/// The document.
pub fn spec() -> Value {
    let mut doc = core_spec();
    add_wall(&mut doc);
    doc
}

/// The wall's endpoints and fields: outage `cause`, retry now, groups.
fn add_wall(doc: &mut Value) {
    const CAUSE: &str = "Why the stream is down, only while `state` is `retrying` or `failed` (else null): auth_failed (401/403), not_found (404: wrong path), unreachable (refused, timed out, no route, DNS), stalled (connected but the pictures stopped), error (anything else; `message` says what).";
    let causes = json!([
        "auth_failed",
        "not_found",
        "unreachable",
        "stalled",
        "error",
        null
    ]);
    doc["components"]["schemas"]["Stream"]["properties"]["cause"] =
        json!({"enum": causes, "description": CAUSE});
    doc["components"]["schemas"]["Group"] = json!({"type": "object", "required": ["id", "name", "streams"], "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "streams": {"type": "array", "maxItems": 256, "uniqueItems": true, "items": {"type": "string"}, "description": "Stream ids in wall order."}}});
    doc["components"]["schemas"]["GroupInput"] = json!({"type": "object", "required": ["name", "streams"], "additionalProperties": false, "properties": {
        "id": {"type": "string", "description": "Optional; must match the URL."},
        "name": {"type": "string", "minLength": 1, "maxLength": 64, "description": "1 to 64 characters, not blank."},
        "streams": {"type": "array", "maxItems": 256, "uniqueItems": true, "items": {"type": "string"}, "description": "Ids of existing streams, no duplicates."}}});
    let group_ref = json!({"$ref": "#/components/schemas/Group"});
    let paths = &mut doc["paths"];
    paths["/api/streams/{id}/retry"] = json!({"post": {
        "summary": "Retry now (admin): end the source's current attempt or backoff wait and start a fresh attempt at once (backoff reset; counted as a `manual` start). Viewers stay connected and see connecting, then live.",
        "parameters": [id_param()],
        "responses": {"202": json_response("restarting", json!({"type": "object", "required": ["state"], "properties": {"state": {"enum": ["connecting", "live", "retrying", "failed"]}}})),
            "401": error_response("no token"), "403": error_response("not admin, or cross-origin"), "404": error_response("unknown stream"),
            "409": error_response("not_running: no source runs (an on-demand stream starts when someone watches)")}}});
    paths["/api/groups"] = json!({"get": {
        "summary": "The wall's camera groups in saved order (any signed-in role). Only stream ids the caller may watch and that exist are listed; a non-admin does not see groups with none.",
        "responses": {"200": json_response("groups", json!({"type": "object", "properties": {"groups": {"type": "array", "items": group_ref}}})),
            "401": error_response("no token"), "403": error_response("a metrics token")}}});
    paths["/api/groups/{id}"] = json!({
        "parameters": [id_param()],
        "put": {"summary": "Create or replace a group (admin); saved in the groups file beside the API streams file",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GroupInput"}}}},
            "responses": {"201": json_response("created", group_ref.clone()), "200": json_response("replaced", group_ref.clone()),
                "400": error_response("malformed_request (JSON), or invalid_group with `field` (id, name, streams)"),
                "401": error_response("no token"), "403": error_response("not admin, or cross-origin"),
                "409": error_response("256 groups exist already, or cluster_read_only (a cluster node)"), "413": error_response("body too large"), "415": error_response("not application/json")}},
        "delete": {"summary": "Delete a group (admin)", "responses": {"204": {"description": "deleted"}, "401": error_response("no token"), "403": error_response("not admin"), "404": error_response("group_not_found"), "409": error_response("cluster_read_only (a cluster node)")}}
    });
    if let Some(Value::String(text)) = paths
        .get_mut("/ws/streams/{id}")
        .and_then(|p| p.get_mut("get"))
        .and_then(|g| g.get_mut("description"))
    {
        text.push_str(
            r#" hello and state ({"type":"state","state","message","cause"}) carry `cause`: "#,
        );
        text.push_str(CAUSE);
    }
}

/// The document without the wall's additions.
fn core_spec() -> Value {
    let stream_ref = json!({"$ref": "#/components/schemas/Stream"});
    let input_ref = json!({"$ref": "#/components/schemas/StreamInput"});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Camgate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Watch RTSP cameras in a browser. Errors are JSON: {\"error\": {\"code\", \"message\", \"field\"?}}. With `auth.tokens` configured, send `Authorization: Bearer <token>` or the session cookie from POST /api/session. Every route first checks (before any credential): `Host` names the gateway (else 421 host_not_allowed); a state-changing request or WebSocket upgrade from a browser is same-origin or in `server.allowed_origins` (else 403 origin_not_allowed); a request body is `application/json` (else 415) and arrives within 10 s (else 408 body_timeout). At the connection limit, only health, metrics and media GETs are served (else 503 server_busy)."
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "camgate_session"}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}}},
                "Stream": {"type": "object", "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "on_demand": {"type": "boolean"},
                    "idle_timeout": {"type": "string", "examples": ["30s"]},
                    "source": {"type": "object", "description": "`plugin` plus the plugin's options; secrets are never returned, URL passwords are masked."},
                    "variants": {"type": "array", "items": {"enum": ["main", "sub"]}, "description": "The picture streams viewers may choose with ?variant= on the media routes."},
                    "sub": sub_schema(),
                    "editable": {"type": "boolean", "description": "Created through the API (PUT/DELETE allowed)."},
                    "state": {"enum": ["stopped", "connecting", "live", "retrying", "failed"]},
                    "message": {"type": "string"}, "viewers": {"type": "integer"},
                    "fps": {"type": "number"}, "bitrate": {"type": "number", "description": "bits/s"},
                    "width": {"type": ["integer", "null"]}, "height": {"type": ["integer", "null"]},
                    "frames_in": {"type": "integer"}, "uptime_seconds": {"type": ["number", "null"]},
                    "codec": {"enum": ["jpeg", "h264", "h265", null], "description": "The source's native codec, once it has sent a frame."},
                    "transcoders": {"type": "integer", "description": "Transcoders running for the stream (a passthrough stream's JPEGs while it has MJPEG consumers)."},
                    "health": {"enum": ["ok", "frozen", "dark", "late", "unknown"], "description": "Picture health: frozen (frames arrive, the picture does not change), dark (black or uniform), late (old frames or under the configured rate), unknown (not running, or nothing sampled yet). Thresholds: the stream's `health_rules`."},
                    "health_since": {"type": "string", "format": "date-time", "description": "When the current `health` began."},
                    "health_rules": {"$ref": "#/components/schemas/HealthRules"}}},
                "HealthRules": {"type": "object", "additionalProperties": false, "description": "The thresholds picture health is judged by (docs/configuration.md, \"Picture health\"). In a stream: every value in force. In an input: any subset; the rest are the defaults.", "properties": {
                    "enabled": {"type": "boolean", "default": true}, "frozen_after": {"type": "string", "default": "10s"},
                    "dark_after": {"type": "string", "default": "10s"}, "dark_luma": {"type": "number", "minimum": 0, "maximum": 255, "default": 20},
                    "late_after": {"type": "string", "default": "3s"}, "min_fps_ratio": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5}}},
                "StreamInput": {"type": "object", "required": ["source"], "additionalProperties": false, "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "on_demand": {"type": "boolean"},
                    "idle_timeout": {"type": "string"},
                    "health_rules": {"allOf": [{"$ref": "#/components/schemas/HealthRules"}], "description": "Omitted on update: the stored thresholds stay; `{}`: back to the defaults."},
                    "sub": {"oneOf": [sub_schema(), {"type": "null"}], "description": "Omitted on update: the stored sub stays; null: no sub."},
                    "source": {"type": "object", "required": ["plugin"], "description": "Validated by the plugin like the manifest. URLs must be rtsp, rtsps, http or https; `*_path` options are manifest-only. An empty password keeps the stored one; on update, an option shown masked (a URL with `***` as its password, a hidden secret) is kept when omitted or sent back unchanged, and a URL whose password is `***` is otherwise refused (422). Strings are data: `${VAR}` is not substituted."}}},
                "Plugin": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "description": {"type": "string"}, "abi_version": {"type": "integer"}, "origin": {"type": "object"}}}
            }
        },
        "paths": {
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": json_response("alive", json!({"type": "object"}))}}},
            "/readyz": {"get": {"summary": "Readiness (503 `{\"status\":\"starting\"}` until the configuration is applied, 503 while shutting down); a cluster node names itself in `node`", "responses": {"200": json_response("ready", json!({"type": "object"})), "503": error_response("shutting down")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (admin or scrape-only `metrics` token)", "responses": {"200": {"description": "text exposition format", "content": {"text/plain": {}}}, "401": error_response("no token"), "403": error_response("neither admin nor metrics")}}},
            "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": json_response("OpenAPI 3.1", json!({"type": "object"}))}}},
            "/api/session": {
                "get": {"summary": "Whether authentication is on and who the caller is", "responses": {"200": json_response("session", json!({"type": "object", "properties": {"auth_required": {"type": "boolean"}, "authenticated": {"type": "boolean"}, "role": {"enum": ["admin", "viewer", "metrics", null]}, "cluster_node": {"type": ["string", "null"], "description": "the cluster node answering (null outside cluster mode): its streams and groups come from the shared manifest"}}}))}},
                "post": {"summary": "Exchange a token for an HttpOnly session cookie", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}}}}, "responses": {"204": {"description": "logged in (Set-Cookie)"}, "401": error_response("wrong token"), "403": error_response("cross-origin"), "408": error_response("body too slow"), "415": error_response("not application/json"), "503": error_response("too many logins in progress")}},
                "delete": {"summary": "Log out", "responses": {"204": {"description": "logged out"}}}
            },
            "/api/streams": {
                "get": {"summary": "Streams the caller may watch, in manifest order", "responses": {"200": json_response("streams", json!({"type": "object", "properties": {"streams": {"type": "array", "items": stream_ref}}})), "401": error_response("no token")}},
                "post": {"summary": "Create a stream (admin); stored in the API-managed file", "requestBody": {"required": true, "content": {"application/json": {"schema": input_ref}}},
                    "responses": {"201": json_response("created", stream_ref.clone()), "400": error_response("malformed JSON"), "409": error_response("id exists, or cluster_read_only (a cluster node)"), "413": error_response("body too large"), "415": error_response("not application/json"), "422": error_response("invalid stream"), "401": error_response("no token"), "403": error_response("not admin, or cross-origin")}}
            },
            "/api/streams/{id}": {
                "parameters": [id_param()],
                "get": {"summary": "One stream", "responses": {"200": json_response("stream", stream_ref.clone()), "404": error_response("unknown stream"), "403": error_response("not allowed")}},
                "put": {"summary": "Replace an API-created stream (admin)", "requestBody": {"required": true, "content": {"application/json": {"schema": input_ref}}},
                    "responses": {"200": json_response("updated", stream_ref.clone()), "404": error_response("unknown stream"), "409": error_response("defined in the manifest, or cluster_read_only"), "413": error_response("body too large"), "415": error_response("not application/json"), "422": error_response("invalid stream"), "403": error_response("not admin, or cross-origin")}},
                "delete": {"summary": "Delete an API-created stream (admin)", "responses": {"204": {"description": "deleted; its viewers are closed with 4004"}, "404": error_response("unknown stream"), "409": error_response("defined in the manifest, or cluster_read_only")}}
            },
            "/api/streams/{id}/snapshot.jpg": {"get": {"summary": "The latest frame (starts an on-demand source and waits up to 5 s)", "parameters": [id_param(), variant_param(), access_token_param()],
                "responses": {"200": {"description": "JPEG", "content": {"image/jpeg": {}}}, "400": error_response("bad variant"), "404": error_response("unknown stream, or no such variant"), "503": error_response("no frame")}}},
            "/api/streams/{id}/mjpeg": {"get": {"summary": "Live MJPEG over HTTP (multipart/x-mixed-replace)", "parameters": [id_param(), variant_param(), max_fps_param(), access_token_param()],
                "responses": {"200": {"description": "one JPEG per part", "content": {"multipart/x-mixed-replace": {}}}, "400": error_response("bad max_fps or variant"), "404": error_response("unknown stream, or no such variant"), "503": error_response("stream at max_viewers_per_stream")}}},
            "/api/cluster": {"get": {"summary": "Cluster mode: this node, the members and their readiness, and each stream's owner (only streams the caller may watch); outside a cluster node is null", "responses": {"200": json_response("cluster", json!({"type": "object", "required": ["node", "members", "owners"], "properties": {"node": {"type": ["string", "null"]}, "members": {"type": "array", "items": {"type": "object", "required": ["name", "url", "ready"], "properties": {"name": {"type": "string"}, "url": {"type": "string"}, "ready": {"type": "boolean"}}}}, "owners": {"type": "object", "additionalProperties": {"type": "string"}}}})), "401": error_response("no token")}}},
            "/api/plugins": {"get": {"summary": "Loaded source plugins", "responses": {"200": json_response("plugins", json!({"type": "object", "properties": {"plugins": {"type": "array", "items": {"$ref": "#/components/schemas/Plugin"}}}}))}}},
            "/api/config": {"get": {"summary": "Configuration status: files, last reload, errors (admin)", "responses": {"200": json_response("status", json!({"type": "object"}))}}},
            "/ws/streams/{id}": {"get": {"summary": "WebSocket viewer: binary = one JPEG (format=mjpeg, the default) or one H.264/H.265 access unit behind an 18-byte header (format=h264|h265|auto), text = JSON events (hello, health, config, state, dropped); close codes 1001, 4001, 4004, 4006 (format unavailable), 4008 (1002, 1007, 1009 for a client that breaks the protocol, 1008 for a bad credit message)",
                "description": "hello carries variant (main or sub: what this socket carries) and server_time_us (the gateway's clock when it wrote the hello, µs since the Unix epoch). Right after hello, and whenever it changes, {\"type\":\"health\",\"health\":ok|frozen|dark|late|unknown,\"since\":RFC 3339}: the stream's picture health (as in GET /api/streams/{id}). Freshness reports: the viewer may send {\"type\":\"shown\",\"frames\":N,\"age_ms\":[...]} about every 5 s while it draws: N (0 to 10000) pictures drawn since its last report and up to 32 (and at most N) of their ages in ms (0 to 600000) when drawn, on the gateway's clock as estimated from server_time_us (ages are under-estimated by the hello's one-way delay). At most one report per 2 s per socket is counted (camgate_viewer_frames_shown_total, camgate_viewer_frame_age_seconds); extra or malformed reports are ignored and counted (camgate_viewer_reports_ignored_total), never a disconnect. Opt-in flow control: the viewer may send the text message {\"type\":\"credit\",\"frames\":N} (N an integer from 0 to 1000) to add N frames of credit (the total saturates at 1000). After its first credit message a frame is sent only while credit is above 0 and each frame spends one; it is always the latest frame (credit arriving after frames were withheld gets the current frame at once). Withheld frames are not counted or reported as dropped. Events, pings and close frames need no credit. A credit message whose frames is not such an integer closes the connection with 1008; other text is ignored. Viewers that never send credit get every frame they can take. ?credit=N puts the viewer on credit from its first frame. Passthrough (format=h264, h265 or auto): after hello, a config message {\"type\":\"config\",\"codec\":RFC 6381,\"width\",\"height\",\"description\":base64 avcC/hvcC} before the first frame and on every change; then the GOP since the last keyframe at once and every frame in order; binary messages are [0x01][flags: bit 0 keyframe][seq u64 BE][capture time µs u64 BE][AVCC access unit]. A viewer that falls behind skips to the next keyframe (reported with dropped). Credit works on video sockets too: every frame spends one, in order; a GOP from its keyframe (on joining, or resuming more than 1 s behind) is sent whole to a viewer with any credit and may take its credit below zero, which its next grants pay back before more frames are sent (a client that counts one credit per frame it receives agrees with the gateway); frames passed over while it withheld credit are not counted as dropped.", "parameters": [id_param(), variant_param(), max_fps_param(), access_token_param(),
                    json!({"name": "format", "in": "query", "required": false, "description": "mjpeg (default, JPEG frames), h264 or h265 (the camera's own coding; 4006 if the stream is another codec), auto (the native codec if it is video, else mjpeg). The same for variant=sub: a derived sub is JPEG; a camera's own sub-stream may be video.", "schema": {"enum": ["auto", "h264", "h265", "mjpeg"]}}),
                    json!({"name": "credit", "in": "query", "required": false, "description": "Start on credit flow control with this many frames (0 to 1000).", "schema": {"type": "integer", "minimum": 0, "maximum": 1000}})],
                "responses": {"101": {"description": "switching protocols"}, "400": error_response("bad request"), "403": error_response("origin or token not allowed"), "404": error_response("unknown stream, or no such variant"), "426": error_response("not a WebSocket request"), "503": error_response("stream at max_viewers_per_stream")}}}
        }
    })
}

/// Serves the document.
pub fn document() -> Response<Body> {
    response::json(StatusCode::OK, &spec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::router::ROUTES;

    #[test]
    fn the_document_describes_exactly_the_routes() {
        let spec = spec();
        let paths = spec["paths"].as_object().unwrap();
        let mut documented = Vec::new();
        for (path, item) in paths {
            for method in ["get", "post", "put", "delete"] {
                if item.get(method).is_some() {
                    documented.push(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        let mut routed: Vec<String> = ROUTES
            .iter()
            .map(|r| format!("{} {}", r.method, r.template))
            .collect();
        documented.sort();
        routed.sort();
        assert_eq!(documented, routed);
    }
}
