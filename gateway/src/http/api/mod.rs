//! The JSON API (`/api/...`) and the operational endpoints. Handlers are grouped by
//! concern: streams (CRUD), media (snapshot, MJPEG), retry (restart a source now), groups
//! (the wall's camera groups), cluster (members and owners), system (plugins, config, health, metrics, session).

mod body;
pub mod cluster;
pub mod groups;
pub mod media;
pub mod retry;
pub mod streams;
pub mod system;
