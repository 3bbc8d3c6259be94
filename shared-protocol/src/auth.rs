//! Who may do what: session tokens and the shared secret.
//!
//! A session's token is HMAC-SHA256(shared secret, session id) in lowercase hex. The relay
//! issues sessions; both services hold the same secret (`V1_SHARED_SECRET`), so each can
//! check a token without asking the other or keeping a table. The same secret, as a
//! bearer token, admits a simulation-service to the relay's `/ws/ingest`. Comparisons
//! are constant-time so that response timing does not leak how much of a guess matched.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::ProtocolError;
use crate::message::SessionId;
use crate::validate::MAX_TOKEN_LEN;

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted: 16 bytes, so that guessing it is out of reach.
pub const MIN_SECRET_LEN: usize = 16;

/// A secret that is too short to protect anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared secret has {got} bytes; it needs at least {min} (for example 64 random hex digits: `openssl rand -hex 32`)")]
pub struct WeakSecret {
    pub got: usize,
    pub min: usize,
}

/// The secret shared by the relay and the simulation-services.
#[derive(Clone)]
pub struct SharedSecret {
    bytes: Vec<u8>,
    /// HMAC keyed with the secret, prepared once and cloned per token.
    keyed: HmacSha256,
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret itself.
        write!(f, "SharedSecret({} bytes)", self.bytes.len())
    }
}

impl SharedSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, WeakSecret> {
        let bytes = secret.into();
        let weak = WeakSecret { got: bytes.len(), min: MIN_SECRET_LEN };
        if bytes.len() < MIN_SECRET_LEN {
            return Err(weak);
        }
        // HMAC accepts keys of every length, so this only fails if that ever changes.
        let keyed = HmacSha256::new_from_slice(&bytes).map_err(|_| weak)?;
        Ok(Self { bytes, keyed })
    }

    /// A secret from 32 random bytes, written as 64 hex digits (so it can be passed on
    /// in an environment variable).
    pub fn from_random_bytes(bytes: [u8; 32]) -> Result<(Self, String), WeakSecret> {
        let text = hex::encode(bytes);
        Ok((Self::new(text.clone())?, text))
    }

    fn mac(&self) -> HmacSha256 {
        self.keyed.clone()
    }

    /// The token of `session`: HMAC-SHA256(secret, session id), lowercase hex.
    pub fn token_for(&self, session: &SessionId) -> String {
        let mut mac = self.mac();
        mac.update(session.as_str().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks `token` for `session` in constant time.
    pub fn verify_token(&self, session: &SessionId, token: &str) -> Result<(), ProtocolError> {
        let unauthorized = || ProtocolError::Unauthorized { session: session.to_string() };
        if token.len() != 64 || token.len() > MAX_TOKEN_LEN {
            return Err(unauthorized());
        }
        let Ok(given) = hex::decode(token) else { return Err(unauthorized()) };
        let mut mac = self.mac();
        mac.update(session.as_str().as_bytes());
        mac.verify_slice(&given).map_err(|_| unauthorized())
    }

    /// Checks an `Authorization` header value (`Bearer <secret>`) in constant time.
    pub fn verify_bearer(&self, header: Option<&str>) -> bool {
        let Some(value) = header else { return false };
        let Some(given) = value.strip_prefix("Bearer ").map(str::trim) else { return false };
        // ct_eq on slices of different lengths is false without comparing bytes; the
        // length of the secret is not what needs hiding.
        bool::from(given.as_bytes().ct_eq(&self.bytes))
    }

    /// The `Authorization` header value that [`Self::verify_bearer`] accepts.
    pub fn bearer_header(&self) -> String {
        format!("Bearer {}", String::from_utf8_lossy(&self.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SharedSecret {
        SharedSecret::new("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn token_is_hmac_sha256_hex_of_the_session_id() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let s = secret();
        let id = SessionId::parse("xyz123").unwrap();
        let token = s.token_for(&id);
        assert_eq!(token.len(), 64);
        assert!(s.verify_token(&id, &token).is_ok());
    }

    #[test]
    fn wrong_tokens_are_rejected() {
        let s = secret();
        let id = SessionId::parse("xyz123").unwrap();
        let other = SessionId::parse("xyz124").unwrap();
        let token = s.token_for(&id);
        assert!(s.verify_token(&other, &token).is_err());
        let mut flipped = token.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        assert!(s.verify_token(&id, std::str::from_utf8(&flipped).unwrap()).is_err());
        assert!(s.verify_token(&id, "").is_err());
        assert!(s.verify_token(&id, &"z".repeat(64)).is_err());
        assert!(s.verify_token(&id, &token[..63]).is_err());
        let err = s.verify_token(&id, "nope").unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Unauthorized);
        let another = SharedSecret::new("fedcba9876543210fedcba9876543210").unwrap();
        assert!(another.verify_token(&id, &token).is_err());
    }

    #[test]
    fn bearer_header_round_trips_and_rejects_others() {
        let s = secret();
        assert!(s.verify_bearer(Some(&s.bearer_header())));
        assert!(!s.verify_bearer(None));
        assert!(!s.verify_bearer(Some("Bearer wrong")));
        assert!(!s.verify_bearer(Some("0123456789abcdef0123456789abcdef")));
        assert!(!s.verify_bearer(Some("Basic 0123456789abcdef0123456789abcdef")));
    }

    #[test]
    fn short_secrets_are_refused_and_never_printed() {
        assert_eq!(SharedSecret::new("short").unwrap_err(), WeakSecret { got: 5, min: MIN_SECRET_LEN });
        let (s, text) = SharedSecret::from_random_bytes([7; 32]).unwrap();
        assert_eq!(text.len(), 64);
        assert!(!format!("{s:?}").contains(&text));
    }
}
