//! The audit trail of the API: every state-changing request (POST, PUT, DELETE under /v1),
//! allowed or refused, is one `audit_log` row: who (the token's subject, or `anonymous`),
//! what (method and route), the concrete path, the outcome (status), from where (peer IP)
//! and the request id. Never a body: bodies carry payloads and personal data.
use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::Method,
    middleware::Next,
    response::Response,
};
use nightshift_common::audit;
use serde_json::json;

use crate::AppState;

/// Filled in by the `Caller` extractor once a token is verified.
#[derive(Clone, Default)]
pub struct AuditedSubject(Arc<OnceLock<String>>);

impl AuditedSubject {
    pub fn set(&self, subject: &str) {
        let _ = self.0.set(subject.to_string());
    }
}

pub async fn record_changes(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let actor = AuditedSubject::default();
    req.extensions_mut().insert(actor.clone());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| path.clone(), |m| m.as_str().to_string());
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let resp = next.run(req).await;
    let who = actor.0.get().map_or("anonymous", String::as_str);
    let detail = json!({ "status": resp.status().as_u16(), "ip": ip, "request_id": request_id });
    let entry = audit::Entry {
        actor: who.to_string(),
        action: format!("{method} {route}"),
        target: path.clone(),
        detail,
    };
    // The action has happened; a lost audit row is loud in the logs, not a failed request.
    if let Err(e) = state.audit.write(vec![entry]).await {
        tracing::error!(error = %e, path = %nightshift_common::telemetry::untrusted(&path), "audit log write failed");
    }
    resp
}
