//! The user token business calls carry: none, a fixed one, or one got by logging in
//! (`open.shopweb.security.mobileLogin`), cached, shared by concurrent callers, and renewed
//! once when the gateway says it is gone (9990001).

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::{ApiError, Client, METHOD_LOGIN};
use crate::config::GatewayAuth;

/// How business calls carry the user token, and the cached login token.
pub(super) enum Auth {
    None,
    Fixed(SecretString),
    Login {
        username: String,
        password: SecretString,
        /// The cached token; the lock also makes concurrent callers share one login.
        token: tokio::sync::Mutex<Option<SecretString>>,
    },
}

impl Auth {
    pub(super) fn new(config: &GatewayAuth) -> Self {
        match config {
            GatewayAuth::None => Auth::None,
            GatewayAuth::Token(t) => Auth::Fixed(t.clone()),
            GatewayAuth::Login { username, password } => Auth::Login {
                username: username.clone(),
                password: password.clone(),
                token: tokio::sync::Mutex::new(None),
            },
        }
    }
}

impl Client {
    /// The token to send: none, the fixed one, or the cached login token (logging in when
    /// there is none).
    pub(super) async fn token(&self) -> Result<Option<SecretString>, ApiError> {
        match &self.inner.auth {
            Auth::None => Ok(None),
            Auth::Fixed(t) => Ok(Some(t.clone())),
            Auth::Login {
                username,
                password,
                token,
            } => {
                let mut cached = token.lock().await;
                if let Some(t) = cached.as_ref() {
                    return Ok(Some(t.clone()));
                }
                let business = [
                    ("userName", username.clone()),
                    ("password", password.expose_secret().to_string()),
                ];
                let data = self.with_retries(METHOD_LOGIN, &business, None).await?.data;
                let fresh = data
                    .get("token")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| ApiError::Decode {
                        method: METHOD_LOGIN.into(),
                        detail: "no token in the login answer".into(),
                    })?;
                // The user name is not logged: it may come from the environment, like the
                // password.
                tracing::info!("logged in to the gateway");
                let fresh = SecretString::from(fresh.to_string());
                *cached = Some(fresh.clone());
                Ok(Some(fresh))
            }
        }
    }

    /// Drops the cached token if it is still the one that was refused.
    pub(super) async fn forget_token(&self, refused: Option<&SecretString>) {
        if let (Auth::Login { token, .. }, Some(refused)) = (&self.inner.auth, refused) {
            let mut cached = token.lock().await;
            if cached
                .as_ref()
                .is_some_and(|t| t.expose_secret() == refused.expose_secret())
            {
                *cached = None;
            }
        }
    }
}
