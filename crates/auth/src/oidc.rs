//! OpenID Connect: the provider's discovery document and keys (JWKS, cached), ID token validation
//! (signature by the issuer's keys, issuer, audience, expiry, nonce), and the authorization-code flow with
//! PKCE (S256) that the dashboard uses.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{AuthError, ExternalUser, GroupMapping};

/// `[oidc]` in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer URL exactly as the provider names itself (its discovery document must agree).
    pub issuer: String,
    /// The dashboard's client id at the provider.
    pub client_id: String,
    /// The dashboard's client secret (confidential client; `DOCKETOPS_OIDC_CLIENT_SECRET` overrides it).
    /// Leave it out for a public client: PKCE protects the code either way.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Audiences accepted for tokens used as API bearer tokens (default: the client id).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Where the provider sends the browser back, e.g. `https://gateway.example/auth/oidc/callback`
    /// (default: this gateway's address as the browser used it).
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// The claim that lists a user's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Scopes asked for at sign-in.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Which groups get which roles and scopes.
    #[serde(default)]
    pub groups: Vec<GroupMapping>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email", "groups"].map(String::from).to_vec()
}

fn default_leeway() -> u64 {
    30
}

/// The parts of the discovery document the gateway uses.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// Keys are refetched after this long, or sooner when a token names an unknown key id (key rotation).
const JWKS_MAX_AGE: Duration = Duration::from_secs(600);
/// An unknown key id refetches the keys at most this often (a flood of forged kids cannot hammer the provider).
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(30);

/// Asymmetric algorithms only: `none` and HMAC (which would make the public client id a key) are refused.
const ALLOWED: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

/// One OpenID Connect provider: validates its tokens and runs the dashboard's sign-in. The discovery document
/// is fetched once and kept; the keys (JWKS) are cached for up to ten minutes.
#[derive(Debug)]
pub struct OidcProvider {
    config: OidcConfig,
    http: reqwest::Client,
    metadata: Mutex<Option<Metadata>>,
    keys: Mutex<Option<(Arc<JwkSet>, Instant)>>,
}

/// A PKCE verifier and its S256 challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    /// The code verifier: 32 random bytes in base64url without padding (43 characters), sent with the code exchange.
    pub verifier: String,
    /// The base64url (unpadded) SHA-256 of `verifier`, sent in the authorization URL.
    pub challenge: String,
}

impl Pkce {
    /// A fresh verifier from the OS random source, and its challenge.
    pub fn new() -> Pkce {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce { verifier, challenge }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

impl OidcProvider {
    /// Checks that the issuer is a URL and the client id is not empty; contacts the provider only when first needed.
    pub fn new(config: OidcConfig) -> Result<OidcProvider, AuthError> {
        url::Url::parse(&config.issuer)
            .map_err(|e| AuthError::Config(format!("issuer {:?} is not a URL: {e}", config.issuer)))?;
        if config.client_id.is_empty() {
            return Err(AuthError::Config("client_id is empty".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| AuthError::Config(e.to_string()))?;
        Ok(OidcProvider {
            config,
            http,
            metadata: Mutex::new(None),
            keys: Mutex::new(None),
        })
    }

    /// The configuration this provider was made from.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The audiences accepted for API bearer tokens.
    pub fn api_audiences(&self) -> Vec<String> {
        if self.config.audiences.is_empty() {
            vec![self.config.client_id.clone()]
        } else {
            self.config.audiences.clone()
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, AuthError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| AuthError::Unavailable(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(AuthError::Unavailable(format!("{url} answered {}", response.status())));
        }
        response
            .json()
            .await
            .map_err(|e| AuthError::Unavailable(format!("{url} sent an unreadable answer: {e}")))
    }

    /// The discovery document, fetched once; its issuer must be the configured one (OpenID Connect
    /// Discovery §4.3), or tokens could be accepted from someone else.
    async fn metadata(&self) -> Result<Metadata, AuthError> {
        if let Some(found) = self.metadata.lock().expect("metadata lock").clone() {
            return Ok(found);
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let metadata: Metadata = self.get_json(&url).await?;
        if metadata.issuer != self.config.issuer {
            return Err(AuthError::Config(format!(
                "the provider calls itself {:?}, not the configured issuer {:?}",
                metadata.issuer, self.config.issuer
            )));
        }
        *self.metadata.lock().expect("metadata lock") = Some(metadata.clone());
        Ok(metadata)
    }

    async fn key_set(&self, refresh: bool) -> Result<Arc<JwkSet>, AuthError> {
        if let Some((keys, fetched)) = self.keys.lock().expect("keys lock").clone() {
            let fresh = fetched.elapsed() < JWKS_MAX_AGE;
            if fresh && (!refresh || fetched.elapsed() < JWKS_MIN_REFRESH) {
                return Ok(keys);
            }
        }
        let metadata = self.metadata().await?;
        let keys: Arc<JwkSet> = Arc::new(self.get_json(&metadata.jwks_uri).await?);
        *self.keys.lock().expect("keys lock") = Some((keys.clone(), Instant::now()));
        Ok(keys)
    }

    /// The issuer's key for a token header: by `kid`, or the only key when the token names none.
    async fn key_for(&self, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
        for refresh in [false, true] {
            let keys = self.key_set(refresh).await?;
            let found = match kid {
                Some(kid) => keys.find(kid),
                None if keys.keys.len() == 1 => keys.keys.first(),
                None => None,
            };
            if let Some(jwk) = found {
                return DecodingKey::from_jwk(jwk)
                    .map_err(|e| AuthError::Unavailable(format!("the issuer's key cannot be used: {e}")));
            }
        }
        Err(AuthError::Unauthorized(format!(
            "the token is signed with a key ({}) the issuer does not publish",
            kid.unwrap_or("no key id")
        )))
    }

    /// Validates an ID token (or a JWT access token): signed by one of the issuer's keys with an asymmetric
    /// algorithm, from the configured issuer, for one of `audiences`, not expired, and with `nonce` if given.
    pub async fn validate(
        &self,
        token: &str,
        audiences: &[String],
        nonce: Option<&str>,
    ) -> Result<ExternalUser, AuthError> {
        let unauthorized = |m: String| AuthError::Unauthorized(m);
        let header = jsonwebtoken::decode_header(token).map_err(|e| unauthorized(format!("not a JWT: {e}")))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(unauthorized(format!(
                "tokens signed with {:?} are not accepted",
                header.alg
            )));
        }
        // Read (not trust) the issuer first, so a token from another provider gets a clear answer.
        let claimed: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|e| unauthorized(format!("the token's claims cannot be read: {e}")))?;
        match claimed.get("iss").and_then(Value::as_str) {
            Some(iss) if iss == self.config.issuer => {}
            Some(iss) => {
                return Err(unauthorized(format!(
                    "the token's issuer {iss:?} is not trusted (this gateway trusts {:?})",
                    self.config.issuer
                )));
            }
            None => return Err(unauthorized("the token has no issuer".into())),
        }
        let key = self.key_for(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.config.leeway_seconds;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
            unauthorized(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".into(),
                ErrorKind::ImmatureSignature => "the token is not valid yet".into(),
                ErrorKind::InvalidAudience => format!(
                    "the token is not meant for this gateway (accepted audiences: {})",
                    audiences.join(", ")
                ),
                ErrorKind::InvalidIssuer => "the token's issuer is not trusted".into(),
                ErrorKind::InvalidSignature => "the token's signature does not verify with the issuer's keys".into(),
                _ => format!("the token is not valid: {e}"),
            })
        })?;
        let claims = data.claims;
        if let Some(expected) = nonce
            && claims.get("nonce").and_then(Value::as_str) != Some(expected)
        {
            return Err(unauthorized("the ID token's nonce does not match this sign-in".into()));
        }
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let subject = text("sub").unwrap_or_default();
        let groups = match claims.get(&self.config.groups_claim) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        Ok(ExternalUser {
            source: "oidc",
            issuer: self.config.issuer.clone(),
            username: text("preferred_username")
                .or_else(|| text("email"))
                .unwrap_or_else(|| subject.clone()),
            subject,
            email: text("email"),
            groups,
            expires_at: claims.get("exp").and_then(Value::as_i64),
        })
    }

    /// Where to send the browser to sign in (authorization-code flow with PKCE S256, state and nonce).
    pub async fn authorization_url(
        &self,
        redirect_url: &str,
        state: &str,
        nonce: &str,
        pkce: &Pkce,
    ) -> Result<String, AuthError> {
        let metadata = self.metadata().await?;
        let mut url = url::Url::parse(&metadata.authorization_endpoint)
            .map_err(|e| AuthError::Unavailable(format!("the authorization endpoint is not a URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_url)
            .append_pair("scope", &self.config.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Exchanges an authorization code for the ID token (the token endpoint, with the PKCE verifier and
    /// the client's secret if it has one).
    pub async fn exchange_code(&self, code: &str, redirect_url: &str, verifier: &str) -> Result<String, AuthError> {
        let metadata = self.metadata().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_url),
            ("code_verifier", verifier),
            ("client_id", self.config.client_id.as_str()),
        ];
        let mut request = self.http.post(&metadata.token_endpoint).form(&form);
        if let Some(secret) = &self.config.client_secret {
            // client_secret_basic: both parts form-encoded before Basic (RFC 6749 §2.3.1).
            let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request.basic_auth(encode(&self.config.client_id), Some(encode(secret)));
        }
        let response = request
            .send()
            .await
            .map_err(|e| AuthError::Unavailable(format!("token endpoint: {e}")))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_client_error() {
            return Err(AuthError::Unauthorized(format!(
                "the provider refused the sign-in: {} {}",
                body["error"].as_str().unwrap_or("error"),
                body["error_description"].as_str().unwrap_or_default()
            )));
        }
        if !status.is_success() {
            return Err(AuthError::Unavailable(format!("the token endpoint answered {status}")));
        }
        body["id_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| AuthError::Unavailable("the token endpoint sent no id_token".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_the_s256_of_the_verifier() {
        let pkce = Pkce::new();
        assert_eq!(pkce.verifier.len(), 43);
        let expected =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(pkce.verifier.as_bytes()));
        assert_eq!(pkce.challenge, expected);
        assert_ne!(Pkce::new().verifier, pkce.verifier);
    }

    #[tokio::test]
    async fn hmac_and_unsigned_tokens_are_refused_before_any_key_lookup() {
        let provider = OidcProvider::new(OidcConfig {
            issuer: "http://127.0.0.1:1".into(),
            client_id: "c".into(),
            client_secret: None,
            audiences: vec![],
            redirect_url: None,
            groups_claim: default_groups_claim(),
            scopes: default_scopes(),
            groups: vec![],
            leeway_seconds: 0,
        })
        .unwrap();
        let claims = serde_json::json!({"iss": "http://127.0.0.1:1", "sub": "x", "aud": "c", "exp": 4102444800u64});
        let hs256 = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"c"),
        )
        .unwrap();
        let error = provider.validate(&hs256, &["c".into()], None).await.unwrap_err();
        assert!(error.to_string().contains("not accepted"), "{error}");
        let error = provider.validate("not.a.jwt", &["c".into()], None).await.unwrap_err();
        assert!(matches!(error, AuthError::Unauthorized(_)), "{error}");
    }
}
