//! The JSON API (`/api/...`) and the operational endpoints. Handlers are grouped by
//! concern: streams (CRUD), media (snapshot, MJPEG), system (plugins, config, health,
//! metrics, session).

mod body;
pub mod media;
pub mod streams;
pub mod system;
