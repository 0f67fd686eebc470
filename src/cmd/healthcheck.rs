//! `healthcheck`: asks a running exporter on this machine whether it is alive (`/-/healthy`)
//! or ready (`/-/ready`), for a container's `HEALTHCHECK` or a Kubernetes exec probe, which
//! cannot send credentials or speak TLS by themselves. It finds out whether the port speaks TLS
//! (plain HTTP first; the exporter's `400` to plain HTTP on its TLS port means try HTTPS, with
//! any certificate: this is loopback, not a trust decision). A `401` proves the exporter alive
//! (basic authentication answered); readiness behind basic authentication needs the
//! credentials in `OPRETAIL_HEALTHCHECK_USER` and `OPRETAIL_HEALTHCHECK_PASSWORD`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The user and the password a readiness probe sends, if basic authentication is on.
pub const USER_ENV: &str = "OPRETAIL_HEALTHCHECK_USER";
pub const PASSWORD_ENV: &str = "OPRETAIL_HEALTHCHECK_PASSWORD";

/// What the exporter said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Alive (or ready), with what showed it.
    Good(String),
    /// Not, and why.
    Bad(String),
}

/// Asks the exporter listening on `listen` (an unspecified address means this machine's
/// loopback) whether it is alive, or with `ready` ready. `credentials` are sent when given.
pub async fn check(listen: SocketAddr, ready: bool, credentials: Option<(String, String)>) -> Health {
    let host = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let address = SocketAddr::new(host, listen.port());
    let path = if ready { "/-/ready" } else { "/-/healthy" };
    let client = match reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
    {
        Ok(client) => client,
        Err(e) => return Health::Bad(format!("cannot build an HTTP client: {e}")),
    };
    for scheme in ["http", "https"] {
        let mut request = client.get(format!("{scheme}://{address}{path}"));
        if let Some((user, password)) = &credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Health::Bad(format!("{scheme}://{address}{path}: {e}")),
        };
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if scheme == "http" && status == 400 && body.contains("HTTP request to an HTTPS server") {
            continue;
        }
        return judge(scheme, path, status, ready, credentials.is_some());
    }
    Health::Bad(format!("{address} answers neither HTTP nor HTTPS"))
}

/// The verdict on an answer's status.
fn judge(scheme: &str, path: &str, status: u16, ready: bool, sent_credentials: bool) -> Health {
    match status {
        200 => Health::Good(format!("{scheme} {path}: 200")),
        401 if !ready => Health::Good(format!("{scheme} {path}: 401 (alive; basic authentication is on)")),
        401 if sent_credentials => Health::Bad(format!("{scheme} {path}: 401 (the credentials were refused)")),
        401 => Health::Bad(format!(
            "{scheme} {path}: 401 (basic authentication is on: set {USER_ENV} and {PASSWORD_ENV})"
        )),
        503 if ready => Health::Bad(format!("{scheme} {path}: 503 (no poll has completed yet)")),
        other => Health::Bad(format!("{scheme} {path}: {other}")),
    }
}

/// The credentials from the environment, when both are set.
pub fn credentials_from_env() -> Option<(String, String)> {
    let user = std::env::var(USER_ENV).ok().filter(|u| !u.is_empty())?;
    let password = std::env::var(PASSWORD_ENV).ok()?;
    Some((user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_401_is_alive_but_not_ready() {
        assert!(matches!(
            judge("https", "/-/healthy", 401, false, false),
            Health::Good(_)
        ));
        let Health::Bad(why) = judge("https", "/-/ready", 401, true, false) else {
            panic!("401 is not ready");
        };
        assert!(why.contains(USER_ENV), "{why}");
        assert!(matches!(judge("http", "/-/ready", 503, true, false), Health::Bad(_)));
        assert!(matches!(judge("http", "/-/ready", 200, true, true), Health::Good(_)));
    }
}
