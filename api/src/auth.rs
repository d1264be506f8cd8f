//! Bearer tokens for admin routes and (optionally) for ingest, checked by a route layer so
//! that no handler can forget the check and every guarded route answers alike.
//!
//! Tokens are compared in constant time and never logged. Admin routes without a
//! configured admin token are disabled, not open.

use crate::error::{ApiError, ErrorCode};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use subtle::ConstantTimeEq;

#[derive(Clone, Default)]
pub struct Tokens {
    admin: Option<String>,
    ingest: Vec<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("admin", &self.admin.as_ref().map(|_| "<redacted>"))
            .field("ingest", &format!("{} token(s)", self.ingest.len()))
            .finish()
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Constant-time in the token's content (the length of the candidate is not secret).
fn matches(candidate: &str, expected: &str) -> bool {
    candidate.as_bytes().ct_eq(expected.as_bytes()).into()
}

fn unauthorized() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthorized,
        "this route needs `Authorization: Bearer <token>`",
    )
}

fn forbidden() -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        "the token is not valid for this route",
    )
}

impl Tokens {
    pub fn new(admin: Option<String>, ingest: Vec<String>) -> Self {
        Tokens {
            admin: admin.filter(|t| !t.is_empty()),
            ingest: ingest.into_iter().filter(|t| !t.is_empty()).collect(),
        }
    }

    pub fn check_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.admin else {
            return Err(ApiError::new(
                ErrorCode::AdminDisabled,
                "admin routes are disabled: start drift-api with --admin-token",
            ));
        };
        let token = bearer(headers).ok_or_else(unauthorized)?;
        if matches(token, expected) {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    /// Ingest needs a token only when ingest tokens are configured; the admin token is
    /// accepted too.
    pub fn check_ingest(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.ingest.is_empty() {
            return Ok(());
        }
        let token = bearer(headers).ok_or_else(unauthorized)?;
        let mut ok = false;
        for t in self.ingest.iter().chain(self.admin.iter()) {
            // No early exit: every configured token is compared.
            ok |= matches(token, t);
        }
        if ok {
            Ok(())
        } else {
            Err(forbidden())
        }
    }
}

/// Route layer of the admin routes.
pub async fn admin_only(State(tokens): State<Arc<Tokens>>, req: Request, next: Next) -> Response {
    match tokens.check_admin(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Route layer of ingest and predictions (open unless ingest tokens are configured).
pub async fn ingest_only(State(tokens): State<Arc<Tokens>>, req: Request, next: Next) -> Response {
    match tokens.check_ingest(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::AUTHORIZATION, v.parse().unwrap());
        m
    }

    #[test]
    fn admin_disabled_without_token_and_checked_with_one() {
        let none = Tokens::new(None, vec![]);
        assert_eq!(
            none.check_admin(&h("Bearer x")).unwrap_err().code,
            ErrorCode::AdminDisabled
        );
        assert!(none.check_ingest(&HeaderMap::new()).is_ok());
        let t = Tokens::new(Some("s3cret".into()), vec!["ing".into()]);
        assert_eq!(t.check_admin(&HeaderMap::new()).unwrap_err().status(), 401);
        assert_eq!(t.check_admin(&h("Bearer nope")).unwrap_err().status(), 403);
        assert!(t.check_admin(&h("Bearer s3cret")).is_ok());
        assert!(t.check_admin(&h("bearer s3cret")).is_ok());
        assert_eq!(t.check_admin(&h("Basic s3cret")).unwrap_err().status(), 401);
        assert!(t.check_ingest(&h("Bearer ing")).is_ok());
        assert!(t.check_ingest(&h("Bearer s3cret")).is_ok());
        assert_eq!(t.check_ingest(&h("Bearer x")).unwrap_err().status(), 403);
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
