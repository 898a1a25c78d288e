//! `/api/groups`: the wall's camera groups — list (any signed-in role), create or replace
//! and delete (admin). The model, its rules and its file are `config/groups.rs`.
//!
//! Invariants:
//! - A caller only ever sees stream ids it may watch, and only of streams that exist now
//!   (a stream removed after it was grouped stays in the file but is left out here). A
//!   non-admin does not see a group that has no stream it may watch; an admin sees every
//!   group, empty ones included (so it can fill them).
//! - A PUT names existing streams only, and is validated whole before anything is
//!   written; errors are `{"error": {"code", "message", "field"}}` like `/api/streams`'s:
//!   400 `invalid_group` naming the field (also for a body of the wrong shape), 400
//!   `malformed_request` for JSON that does not parse.
//! - The body is read by the API's one body reader (`body.rs`: size and time limits,
//!   `application/json` only) and parsed by serde_json: no parser of its own.

use std::path::PathBuf;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::body::{ApiError, read_json};
use crate::app::AppState;
use crate::config::{Group, GroupError, GroupsFileError, groups_file_path, validate_group};
use crate::http::auth::Principal;
use crate::http::response::{self, Body};

/// The body of `PUT /api/groups/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupInput {
    /// Optional; must match the URL when given.
    id: Option<String>,
    name: String,
    streams: Vec<String>,
}

/// Where the current configuration keeps its groups.
fn path_of(state: &AppState) -> PathBuf {
    groups_file_path(&state.config().api_file)
}

fn file_error(e: GroupsFileError) -> ApiError {
    match e {
        GroupsFileError::Full => ApiError::Conflict {
            field: Some("id".to_owned()),
            message: e.to_string(),
        },
        other => ApiError::internal(&other.to_string()),
    }
}

fn invalid(e: &GroupError) -> ApiError {
    ApiError::InvalidGroup {
        field: e.field().to_owned(),
        message: e.to_string(),
    }
}

fn group_not_found(id: &str) -> Response<Body> {
    response::error(
        StatusCode::NOT_FOUND,
        "group_not_found",
        &format!("no group with id `{id}`"),
    )
}

/// `GET /api/groups`: `{"groups": [...]}` in saved order, filtered for the caller.
pub async fn list(state: &Arc<AppState>, principal: Option<&Principal>) -> Response<Body> {
    let groups = match state.groups.list(&path_of(state)).await {
        Ok(groups) => groups,
        Err(e) => return file_error(e).into_response(),
    };
    let config = state.config();
    let admin = principal.is_some_and(Principal::is_admin);
    let visible: Vec<Group> = groups
        .into_iter()
        .filter_map(|mut group| {
            group.streams.retain(|id| {
                config.manifest.stream(id).is_some() && principal.is_some_and(|p| p.can_view(id))
            });
            (admin || !group.streams.is_empty()).then_some(group)
        })
        .collect();
    response::json(StatusCode::OK, &serde_json::json!({ "groups": visible }))
}

/// `PUT /api/groups/{id}`: 201 with the group when created, 200 when replaced.
pub async fn put(state: &Arc<AppState>, id: &str, req: Request<Incoming>) -> Response<Body> {
    let result = async {
        let input: GroupInput = read_json(req).await.map_err(|e| match e {
            // A body of the wrong shape is a bad group, like a bad value.
            ApiError::Invalid { field, message } => ApiError::InvalidGroup {
                field: field
                    .or_else(|| {
                        let rest = message.strip_prefix("missing field `")?;
                        Some(rest.split('`').next()?.to_owned())
                    })
                    .unwrap_or_else(|| "body".to_owned()),
                message,
            },
            other => other,
        })?;
        if input.id.as_deref().is_some_and(|given| given != id) {
            return Err(ApiError::InvalidGroup {
                field: "id".to_owned(),
                message: "the id in the body must match the URL".to_owned(),
            });
        }
        let group = Group {
            id: id.to_owned(),
            name: input.name,
            streams: input.streams,
        };
        validate_group(&group).map_err(|e| invalid(&e))?;
        let config = state.config();
        if let Some(unknown) = group
            .streams
            .iter()
            .find(|s| config.manifest.stream(s).is_none())
        {
            return Err(invalid(&GroupError::UnknownStream(unknown.clone())));
        }
        let path = groups_file_path(&config.api_file);
        let created = state
            .groups
            .put(&path, group.clone())
            .await
            .map_err(file_error)?;
        if created {
            tracing::info!(group = %group.id, streams = group.streams.len(), "group created");
        } else {
            tracing::info!(group = %group.id, streams = group.streams.len(), "group replaced");
        }
        Ok((created, group))
    }
    .await;
    match result {
        Ok((true, group)) => response::json(StatusCode::CREATED, &group),
        Ok((false, group)) => response::json(StatusCode::OK, &group),
        Err(e) => e.into_response(),
    }
}

/// `DELETE /api/groups/{id}`: 204, or 404 `group_not_found`.
pub async fn delete(state: &Arc<AppState>, id: &str) -> Response<Body> {
    match state.groups.delete(&path_of(state), id).await {
        Ok(true) => {
            tracing::info!(group = %id, "group deleted");
            let mut response = Response::new(response::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        Ok(false) => group_not_found(id),
        Err(e) => file_error(e).into_response(),
    }
}
