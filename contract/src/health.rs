//! `GET /healthz` and `GET /readyz`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `ok` from `/healthz` (the process answers), `ready` from `/readyz` (Redis answers and
/// this replica's monitors are registered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Ready,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
}
