//! The HTTP face of the exporter: `/metrics`, the status page (`/`) and its JSON
//! (`/api/v1/targets`, both rendered by [`crate::status`]), and the health, readiness and
//! reload endpoints, served by axum with graceful shutdown. This module owns the routes and
//! their handlers; handlers only read the metrics store, and none of them waits on a poll.
//! With a [`WebConfig`], every path requires basic authentication and/or the server speaks TLS
//! (rustls). `POST /-/reload` answers only when started with `--web.enable-lifecycle`, never
//! to a cross-site request, and tells an anonymous caller no detail of a rejected file.
//! Accepting and serving connections within bounds (HTTP/1.1 only, header deadlines, a
//! connection cap, TLS handshakes) is `conn`'s business.

mod conn;

pub use conn::{raise_open_files_limit, Limits};

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::future::BoxFuture;
use tokio::net::TcpListener;

use crate::metrics::MetricsStore;
use crate::status::{pick_account, render_json_frame, render_page_frame, show, Query, StatusSource};
use crate::web_config::{AuthOutcome, LiveWebConfig, WebConfig, REALM};

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
    /// `--web.enable-lifecycle`: whether `POST /-/reload` may reload.
    pub(crate) lifecycle: bool,
    /// How the last round left every target of every account: the status page's data.
    pub(crate) status: Arc<dyn StatusSource>,
}

/// The exporter's routes.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/api/v1/targets", get(targets_json))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .with_state(state)
}

/// Where the server's TLS and basic authentication come from: a web configuration fixed at
/// start, or the web config file, re-read when it changes.
#[derive(Clone)]
pub enum WebSource {
    Fixed(Arc<WebConfig>),
    Live(Arc<LiveWebConfig>),
}

impl WebSource {
    /// The web configuration in force now.
    pub fn current(&self) -> Arc<WebConfig> {
        match self {
            WebSource::Fixed(web) => Arc::clone(web),
            WebSource::Live(live) => live.current(),
        }
    }
}

impl From<Arc<WebConfig>> for WebSource {
    fn from(web: Arc<WebConfig>) -> Self {
        WebSource::Fixed(web)
    }
}

impl From<Arc<LiveWebConfig>> for WebSource {
    fn from(live: Arc<LiveWebConfig>) -> Self {
        WebSource::Live(live)
    }
}

/// Serves the routes on `listener` within `limits` until `shutdown` completes, then finishes
/// the requests in flight; with the TLS and basic authentication of `web`, if any, as they
/// are at each handshake and request. Whether the port speaks TLS is decided at start.
pub(crate) async fn serve_with(
    listener: TcpListener,
    state: AppState,
    web: Option<WebSource>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut app = router(state);
    let mut tls = None;
    if let Some(web) = web {
        if web.current().tls.is_some() {
            let source = web.clone();
            let tls_source: conn::TlsSource = Arc::new(move || source.current().tls_server_config());
            tls = Some(tls_source);
        }
        app = app.layer(axum::middleware::from_fn_with_state(web, require_basic_auth));
    }
    conn::serve(listener, app, tls, limits, shutdown).await
}

/// Marks a request whose caller basic authentication let in (rejected reloads tell such a
/// caller why).
#[derive(Clone, Copy)]
struct Authenticated;

/// Runs the request if no basic authentication is configured, or if it carries a configured
/// user and password; answers `401` with a `WWW-Authenticate` challenge if not, and `503` with
/// `Retry-After: 1` when too many checks are waiting for bcrypt to tell (the password may well
/// be right). The users are those of the web config in force for this request.
async fn require_basic_auth(State(web): State<WebSource>, request: Request, next: Next) -> Response {
    let Some(auth) = web.current().basic_auth.clone() else {
        return next.run(request).await;
    };
    let header = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    match auth.check_header(header).await {
        AuthOutcome::Allowed => {
            let mut request = request;
            request.extensions_mut().insert(Authenticated);
            next.run(request).await
        }
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

/// `POST /-/reload`: only with `--web.enable-lifecycle` (SIGHUP always reloads), never for a
/// cross-site request (a web page's form must not reload the exporter), and with the problems
/// of a rejected file only for a caller basic authentication let in (they name fields and may
/// quote values; the log has them too).
async fn reload(State(state): State<AppState>, request: Request) -> (StatusCode, String) {
    if !state.lifecycle {
        return (
            StatusCode::FORBIDDEN,
            "Lifecycle API is not enabled (start with --web.enable-lifecycle, or send SIGHUP).\n".to_string(),
        );
    }
    if is_cross_site(request.method(), request.headers()) {
        tracing::warn!("cross-site reload request refused");
        return (
            StatusCode::FORBIDDEN,
            "Cross-site reload requests are refused.\n".to_string(),
        );
    }
    let authenticated = request.extensions().get::<Authenticated>().is_some();
    match &state.reload {
        None => (
            StatusCode::BAD_REQUEST,
            "Not reloadable: the exporter was not started from a configuration file\n".to_string(),
        ),
        Some(r) => match r.reload().await {
            Ok(()) => (StatusCode::OK, "Reloaded\n".to_string()),
            Err(e) if authenticated => (
                StatusCode::BAD_REQUEST,
                format!("Configuration rejected; the previous one stays in force:\n{e}\n"),
            ),
            Err(_) => (
                StatusCode::BAD_REQUEST,
                "Configuration rejected; the previous one stays in force. The exporter's log says why.\n".to_string(),
            ),
        },
    }
}

/// Whether a request comes from another site's page: a browser says so in `Sec-Fetch-Site`,
/// or sends an `Origin` whose host is not the one asked.
fn is_cross_site(method: &Method, headers: &HeaderMap) -> bool {
    if method != Method::POST {
        return false;
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return true;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(o), Some(h)) => !o.eq_ignore_ascii_case(h),
        // `Origin: null` (a sandboxed page, a file) or no Host: not this site.
        _ => true,
    }
}

/// `GET /`: the status page, for the `q`, `status`, `page` and `account` of the query string.
async fn status_page(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let query = match Query::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("Bad query: {e}\n")).into_response(),
    };
    let pick = match pick_account(state.status.statuses(), &query) {
        Ok(found) => found,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("Bad query: {e}\n")).into_response(),
    };
    let page = show(pick, &query, |frame| render_page_frame(frame, &query));
    ([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

/// `Content-Type` of the JSON API.
const JSON_CONTENT_TYPE: &str = "application/json";

/// `GET /api/v1/targets`: the status page's data as JSON.
async fn targets_json(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let query = match Query::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => {
            let body = serde_json::json!({ "error": e.to_string() }).to_string();
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, JSON_CONTENT_TYPE)],
                body,
            )
                .into_response();
        }
    };
    let pick = match pick_account(state.status.statuses(), &query) {
        Ok(found) => found,
        Err(e) => {
            let body = serde_json::json!({ "error": e }).to_string();
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, JSON_CONTENT_TYPE)],
                body,
            )
                .into_response();
        }
    };
    let body = show(pick, &query, |frame| render_json_frame(frame, &query));
    (
        [
            (header::CONTENT_TYPE, JSON_CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}
