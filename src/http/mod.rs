//! The HTTP face of the exporter: `/metrics`, a landing page, and the health, readiness and
//! reload endpoints, served by axum with graceful shutdown. This module owns the routes, their
//! handlers and the serving; handlers only read the metrics store, and none of them waits on a
//! poll. With a [`WebConfig`], every path requires basic authentication and/or the server
//! speaks TLS (rustls); the TLS handshakes are `tls_listener`'s business.

mod tls_listener;

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::metrics::MetricsStore;
use crate::web_config::{AuthOutcome, BasicAuth, WebConfig, REALM};
use tls_listener::TlsListener;

/// Applies the configuration file again (`POST /-/reload`).
pub(crate) trait Reload: Send + Sync {
    /// `Err` carries every problem of a rejected file, for the HTTP answer.
    fn reload(&self) -> BoxFuture<'_, Result<(), Box<dyn std::error::Error + Send + Sync>>>;
}

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<MetricsStore>,
    /// `None` when the exporter was not started from a configuration file.
    pub(crate) reload: Option<Arc<dyn Reload>>,
}

/// The exporter's routes.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Like [`serve`], with the TLS and basic authentication of `web` (plain [`serve`] if `None`).
pub(crate) async fn serve_with(
    listener: TcpListener,
    state: AppState,
    web: Option<Arc<WebConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(web) = web else {
        return serve(listener, state, shutdown).await;
    };
    let mut app = router(state);
    if let Some(auth) = &web.basic_auth {
        app = app.layer(axum::middleware::from_fn_with_state(
            Arc::clone(auth),
            require_basic_auth,
        ));
    }
    match &web.tls {
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await,
        Some(tls) => {
            let listener = TlsListener::new(listener, TlsAcceptor::from(Arc::clone(&tls.server_config)))?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
    }
}

/// Runs the request if it carries a configured user and password; answers `401` with a
/// `WWW-Authenticate` challenge if not, and `503` with `Retry-After: 1` when too many checks
/// are waiting for bcrypt to tell (the password may well be right).
async fn require_basic_auth(State(auth): State<Arc<BasicAuth>>, request: Request, next: Next) -> Response {
    let header = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    match auth.check_header(header).await {
        AuthOutcome::Allowed => next.run(request).await,
        AuthOutcome::Refused => {
            tracing::debug!(path = %request.uri().path(), "request without valid basic auth credentials refused");
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, format!("Basic realm=\"{REALM}\""))],
                "Unauthorized\n",
            )
                .into_response()
        }
        AuthOutcome::Busy => {
            tracing::debug!(path = %request.uri().path(), "too many basic auth checks waiting; request refused as busy");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                "Too many authentication attempts in progress; retry shortly\n",
            )
                .into_response()
        }
    }
}

/// `Content-Type` of the Prometheus text exposition format.
pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let gzip = accepts_gzip(&headers);
    let parts = state.store.exposition(gzip);
    let length = parts.len();
    let body = Body::from_stream(futures_util::stream::iter(parts.map(Ok::<_, std::convert::Infallible>)));
    let mut response = (
        [
            (header::CONTENT_TYPE, EXPOSITION_CONTENT_TYPE),
            (header::VARY, "Accept-Encoding"),
        ],
        body,
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*`, with a q-value above 0).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
        })
}

async fn healthy() -> &'static str {
    "OK\n"
}

async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.store.is_ready() {
        (StatusCode::OK, "Ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: no poll has completed yet\n",
        )
    }
}

async fn reload(State(state): State<AppState>) -> (StatusCode, String) {
    match &state.reload {
        None => (
            StatusCode::BAD_REQUEST,
            "Not reloadable: the exporter was not started from a configuration file\n".to_string(),
        ),
        Some(r) => match r.reload().await {
            Ok(()) => (StatusCode::OK, "Reloaded\n".to_string()),
            Err(e) => (
                StatusCode::BAD_REQUEST,
                format!("Configuration rejected; the previous one stays in force:\n{e}\n"),
            ),
        },
    }
}

async fn landing() -> Html<&'static str> {
    Html(concat!(
        "<!DOCTYPE html>\n<html><head><title>Opretail Exporter</title></head><body>\n",
        "<h1>Opretail Exporter</h1>\n",
        "<p>Hourly people-counting data of the Opretail (Ovopark) open platform, for Prometheus.</p>\n",
        "<ul><li><a href=\"/metrics\">Metrics</a></li>",
        "<li><a href=\"/-/healthy\">Health</a></li><li><a href=\"/-/ready\">Readiness</a></li></ul>\n",
        "<p>Version ",
        env!("CARGO_PKG_VERSION"),
        "</p>\n</body></html>\n"
    ))
}
