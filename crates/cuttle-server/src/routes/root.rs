//! `GET /api`, the root document clients read first, `GET /api/capabilities` (the commands this
//! server accepts), and the server certificate agents pin.

use axum::Json;
use axum::extract::State;

use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use cuttle_api::{Links, OCTOPUS_COMPATIBLE_VERSION, RootDocument};

use crate::state::AppState;

/// Answers anonymously: the official client calls it before authenticating anything.
pub(crate) async fn root_document(State(state): State<AppState>) -> Json<RootDocument> {
    let links = Links::from([
        ("Self".to_owned(), "/api".to_owned()),
        (
            "Spaces".to_owned(),
            "/api/spaces{/id}{?skip,ids,take,partialName}".to_owned(),
        ),
        ("CurrentUser".to_owned(), "/api/users/me".to_owned()),
        ("SignIn".to_owned(), "/api/users/login".to_owned()),
        ("SignOut".to_owned(), "/api/users/logout".to_owned()),
        ("SpaceHome".to_owned(), "/api/{spaceId}".to_owned()),
    ]);
    Json(RootDocument {
        application: "Cuttle".to_owned(),
        version: OCTOPUS_COMPATIBLE_VERSION.to_owned(),
        api_version: "3.0.0".to_owned(),
        cuttle_version: env!("CARGO_PKG_VERSION").to_owned(),
        installation_id: state.installation_id.to_string(),
        links,
    })
}

/// `GET /api/certificates/certificate-global`: the certificate agents pin, by thumbprint.
pub(crate) async fn server_certificate(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    let thumbprint = state.server_thumbprint.as_deref().ok_or_else(|| {
        ApiError::NotFound("this server has no certificate for agents".to_owned())
    })?;
    Ok(Json(serde_json::json!({
        "Id": "certificate-global",
        "Name": "Cuttle server",
        "Thumbprint": thumbprint,
        "Links": { "Self": "/api/certificates/certificate-global" }
    })))
}

/// The command capabilities Octopus lists and this server implements; the official client's
/// `checkForCapability` looks a name up here. Tenanted deployments and runbook runs are not
/// listed: their commands are not implemented yet.
pub(crate) const CAPABILITIES: &[&str] = &[
    "CreateReleaseCommandV1",
    "CreateDeploymentUntenantedCommandV1",
];

/// `GET /api/capabilities`: `{Capabilities: [...]}`, for any signed-in caller.
pub(crate) async fn capabilities(_caller: Caller) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "Capabilities": CAPABILITIES }))
}
