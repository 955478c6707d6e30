//! LDAP sign-in: bind as the user (over LDAPS, or StartTLS on ldap://), then read the groups the user is a
//! member of. The password is only ever sent inside TLS.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use serde::Deserialize;

use crate::{AuthError, ExternalUser, GroupMapping};

/// `[ldap]` in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldaps://host:636`, or `ldap://host:389` with `starttls = true`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS: required for `ldap://`, refused with `ldaps://` (default false).
    #[serde(default)]
    pub starttls: bool,
    /// CA certificates (PEM) to trust for the server's certificate (default: the system's).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The user's DN, `{username}` replaced by the (DN-escaped) name typed at sign-in, e.g.
    /// `uid={username},ou=people,dc=example,dc=org`.
    pub user_dn_template: String,
    /// Where groups live, e.g. `ou=groups,dc=example,dc=org`.
    pub group_base: String,
    /// Which groups the user is in; `{dn}` is replaced by the (filter-escaped) user DN.
    #[serde(default = "default_group_filter")]
    pub group_filter: String,
    /// The attribute that names a group (also matched: the group's DN).
    #[serde(default = "default_group_name")]
    pub group_name_attribute: String,
    /// Which groups get which roles and scopes.
    #[serde(default)]
    pub groups: Vec<GroupMapping>,
    /// Time allowed to connect and for each directory operation, in seconds (default 10).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_group_filter() -> String {
    "(member={dn})".into()
}

fn default_group_name() -> String {
    "cn".into()
}

fn default_timeout() -> u64 {
    10
}

/// An LDAP directory that checks users' passwords and reads their groups; each sign-in opens its own connection.
#[derive(Debug)]
pub struct LdapDirectory {
    config: LdapConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// The longest user name accepted (directories allow more, but no person types this).
const MAX_USERNAME: usize = 256;

impl LdapDirectory {
    /// Checks the configuration (a URL that keeps passwords inside TLS, `{username}` in the DN template) and loads
    /// `ca_file`; connects to nothing yet.
    pub fn new(config: LdapConfig) -> Result<LdapDirectory, AuthError> {
        let url =
            url::Url::parse(&config.url).map_err(|e| AuthError::Config(format!("ldap url {:?}: {e}", config.url)))?;
        match (url.scheme(), config.starttls) {
            ("ldaps", false) | ("ldap", true) => {}
            ("ldaps", true) => return Err(AuthError::Config("ldaps:// is TLS already; drop starttls".into())),
            ("ldap", false) => {
                return Err(AuthError::Config(
                    "ldap:// without starttls would send passwords in clear; use ldaps:// or starttls = true".into(),
                ));
            }
            (other, _) => return Err(AuthError::Config(format!("unknown LDAP scheme {other:?}"))),
        }
        if !config.user_dn_template.contains("{username}") {
            return Err(AuthError::Config("user_dn_template must contain {username}".into()));
        }
        let tls = match &config.ca_file {
            None => None,
            Some(path) => {
                use rustls::pki_types::{CertificateDer, pem::PemObject};
                let mut roots = rustls::RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| AuthError::Config(format!("ca_file {}: {e}", path.display())))?;
                for cert in certs {
                    let cert = cert.map_err(|e| AuthError::Config(format!("ca_file {}: {e}", path.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| AuthError::Config(format!("ca_file {}: {e}", path.display())))?;
                }
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| AuthError::Config(e.to_string()))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                Some(Arc::new(config))
            }
        };
        Ok(LdapDirectory { config, tls })
    }

    /// The configuration this directory was made from.
    pub fn config(&self) -> &LdapConfig {
        &self.config
    }

    /// Binds as `username` with `password`; on success, reads the user's groups with the same connection.
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<ExternalUser, AuthError> {
        // Directories compare user names without case (`uid` is caseIgnoreMatch): one person, one identity,
        // whatever case they type.
        let username = username.trim().to_lowercase();
        let username = username.as_str();
        if username.is_empty() || username.len() > MAX_USERNAME || username.chars().any(char::is_control) {
            return Err(AuthError::Unauthorized("enter your user name".into()));
        }
        // An empty password would be an unauthenticated bind, which many servers answer with success.
        if password.is_empty() {
            return Err(AuthError::Unauthorized("enter your password".into()));
        }
        let dn = self
            .config
            .user_dn_template
            .replace("{username}", &ldap3::dn_escape(username));
        let timeout = Duration::from_secs(self.config.timeout_seconds);
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(timeout)
            .set_starttls(self.config.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let unavailable = |e: ldap3::LdapError| AuthError::Unavailable(format!("{}: {e}", self.config.url));
        let (connection, mut ldap) = LdapConnAsync::with_settings(settings, &self.config.url)
            .await
            .map_err(unavailable)?;
        ldap3::drive!(connection);
        ldap.with_timeout(timeout);
        let bound = ldap.simple_bind(&dn, password).await.map_err(unavailable)?;
        match bound.rc {
            0 => {}
            // invalidCredentials; also a user that does not exist (servers answer the same, on purpose).
            49 => return Err(AuthError::Unauthorized("wrong user name or password".into())),
            other => {
                return Err(AuthError::Unauthorized(format!(
                    "the directory refused the sign-in (result {other}: {})",
                    bound.text
                )));
            }
        }
        let filter = self.config.group_filter.replace("{dn}", &ldap3::ldap_escape(&dn));
        let attribute = self.config.group_name_attribute.as_str();
        ldap.with_timeout(timeout);
        let (found, _) = ldap
            .search(&self.config.group_base, Scope::Subtree, &filter, vec![attribute])
            .await
            .and_then(|result| result.success())
            .map_err(unavailable)?;
        let mut groups = Vec::new();
        for entry in found {
            let entry = SearchEntry::construct(entry);
            groups.extend(entry.attrs.get(attribute).into_iter().flatten().cloned());
            groups.push(entry.dn);
        }
        let _ = ldap.unbind().await;
        Ok(ExternalUser {
            source: "ldap",
            issuer: self.config.url.clone(),
            subject: dn,
            username: username.to_owned(),
            email: None,
            groups,
            expires_at: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, starttls: bool) -> LdapConfig {
        LdapConfig {
            url: url.into(),
            starttls,
            ca_file: None,
            user_dn_template: "uid={username},ou=people,dc=x".into(),
            group_base: "ou=groups,dc=x".into(),
            group_filter: default_group_filter(),
            group_name_attribute: default_group_name(),
            groups: vec![],
            timeout_seconds: 1,
        }
    }

    #[test]
    fn passwords_never_travel_in_clear() {
        assert!(LdapDirectory::new(config("ldap://127.0.0.1:389", false)).is_err());
        assert!(LdapDirectory::new(config("ldaps://127.0.0.1:636", true)).is_err());
        assert!(LdapDirectory::new(config("ldap://127.0.0.1:389", true)).is_ok());
        assert!(LdapDirectory::new(config("ldaps://127.0.0.1:636", false)).is_ok());
    }

    #[tokio::test]
    async fn empty_passwords_and_odd_names_are_refused_before_any_connection() {
        let directory = LdapDirectory::new(config("ldaps://127.0.0.1:1", false)).unwrap();
        for (user, password) in [("alice", ""), ("", "x"), ("a\nb", "x")] {
            let error = directory.authenticate(user, password).await.unwrap_err();
            assert!(matches!(error, AuthError::Unauthorized(_)), "{user:?}: {error}");
        }
    }
}
