//! A Kubernetes `Status` failure: what kubectl prints as `Error from server (<reason>): <message>`.

/// Why a kubectl request is refused: the HTTP status code, the Kubernetes reason that goes with it, and a
/// message kubectl shows as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Refusal {
    /// The HTTP status code, also the `Status` object's `code`.
    pub code: u16,
    /// `BadRequest`, `Forbidden`, `NotFound`, …
    pub reason: &'static str,
    /// What kubectl prints after the reason.
    pub message: String,
}

impl Refusal {
    /// A refusal with status `code` and the reason Kubernetes gives that code.
    pub fn new(code: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason: reason_for(code),
            message: message.into(),
        }
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal::new(400, message)
    }

    /// 403: DocketOps denied the action, or it waits for an approval.
    pub fn forbidden(message: impl Into<String>) -> Refusal {
        Refusal::new(403, message)
    }

    /// 404: a path outside what DocketOps governs.
    pub fn not_found(message: impl Into<String>) -> Refusal {
        Refusal::new(404, message)
    }

    /// 405: a verb the proxy does not translate (a watch of Secrets, a subresource's verb, …).
    pub fn method_not_allowed(message: impl Into<String>) -> Refusal {
        Refusal::new(405, message)
    }

    /// 415: a patch type the proxy does not translate.
    pub fn unsupported_media_type(message: impl Into<String>) -> Refusal {
        Refusal::new(415, message)
    }
}

/// The `reason` of a Kubernetes `Status` with HTTP status `code` (kubectl shows it in parentheses).
fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        // A watch from a resourceVersion the API server no longer has: kubectl lists again.
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_the_reason_kubernetes_gives_its_code() {
        assert_eq!(Refusal::bad_request("no").reason, "BadRequest");
        assert_eq!(Refusal::method_not_allowed("no").code, 405);
        assert_eq!(Refusal::unsupported_media_type("no").reason, "UnsupportedMediaType");
        assert_eq!(Refusal::new(504, "slow").reason, "Timeout");
        assert_eq!(Refusal::new(410, "too old resource version").reason, "Expired");
        // Codes without a reason of their own are internal errors (a bad gateway, a 500).
        assert_eq!(Refusal::new(502, "upstream").reason, "InternalError");
        assert_eq!(Refusal::forbidden("denied").to_string(), "Forbidden: denied");
    }
}
