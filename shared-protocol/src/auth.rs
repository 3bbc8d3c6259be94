//! Who may do what: session tokens and the shared secret.
//!
//! A session's token is `<expiry>.<mac>`: `expiry` is when it stops being valid, in Unix
//! seconds (decimal digits), and `mac` is HMAC-SHA256(shared secret, `<session id>.<expiry>`)
//! in lowercase hex (64 digits). Session ids never contain `.`, so the signed text names
//! exactly one (session, expiry) pair. The relay issues sessions and tokens; both services
//! hold the same secret (`V1_SHARED_SECRET`), so each can check a token, and its expiry,
//! without asking the other or keeping a table. A token expires so that one that leaked
//! (a log, a shared link) stops working on its own; a page renews its token while it is
//! still valid. The same secret, as a bearer token, admits a simulation-service to the
//! relay's `/ws/ingest`. Comparisons are constant-time so that response timing does not
//! leak how much of a guess matched.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::ProtocolError;
use crate::message::SessionId;
use crate::validate::MAX_TOKEN_LEN;

type HmacSha256 = Hmac<Sha256>;

/// Lifetime of a token when none is configured (the relay's `--token-ttl-secs`).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Secrets that were published as examples or defaults: anyone can mint tokens with them,
/// so a service reachable from other machines refuses them.
pub const PUBLIC_SECRETS: &[&str] = &["v1-local-only-change-me-for-any-other-use"];

/// Seconds since the Unix epoch now (0 for a clock set before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A token and when it expires, as the relay hands them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    /// Unix seconds; the token is refused from this second on.
    pub expires_at: u64,
}

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

    /// Whether this is one of the [`PUBLIC_SECRETS`].
    pub fn is_public(&self) -> bool {
        PUBLIC_SECRETS.iter().any(|p| p.as_bytes() == self.bytes.as_slice())
    }

    /// The MAC of `<session>.<expiry digits>`.
    fn token_mac(&self, session: &SessionId, expiry: &str) -> HmacSha256 {
        let mut mac = self.mac();
        mac.update(session.as_str().as_bytes());
        mac.update(b".");
        mac.update(expiry.as_bytes());
        mac
    }

    /// The token of `session` that is valid until `expires_at` (Unix seconds).
    pub fn token_expiring_at(&self, session: &SessionId, expires_at: u64) -> String {
        let expiry = expires_at.to_string();
        let mac = self.token_mac(session, &expiry).finalize().into_bytes();
        format!("{expiry}.{}", hex::encode(mac))
    }

    /// A token of `session` valid for `ttl` from `now` (Unix seconds).
    pub fn issue_token(&self, session: &SessionId, now: u64, ttl: Duration) -> IssuedToken {
        let expires_at = now.saturating_add(ttl.as_secs());
        IssuedToken { token: self.token_expiring_at(session, expires_at), expires_at }
    }

    /// A token of `session` valid for [`DEFAULT_TOKEN_TTL`] from now.
    pub fn token_for(&self, session: &SessionId) -> String {
        self.issue_token(session, unix_now(), DEFAULT_TOKEN_TTL).token
    }

    /// Checks `token` for `session` now; see [`Self::verify_token_at`].
    pub fn verify_token(&self, session: &SessionId, token: &str) -> Result<u64, ProtocolError> {
        self.verify_token_at(session, token, unix_now())
    }

    /// Checks `token` for `session` at `now` (Unix seconds) and returns when it expires.
    /// The MAC is compared in constant time and before the expiry, so only a genuine
    /// token is ever reported as expired (rather than wrong).
    pub fn verify_token_at(&self, session: &SessionId, token: &str, now: u64) -> Result<u64, ProtocolError> {
        let unauthorized = || ProtocolError::Unauthorized { session: session.to_string() };
        if token.len() > MAX_TOKEN_LEN {
            return Err(unauthorized());
        }
        let Some((expiry, mac_hex)) = token.split_once('.') else { return Err(unauthorized()) };
        // At most 20 digits: every u64 fits, and nothing else is parsed.
        if expiry.is_empty() || expiry.len() > 20 || !expiry.bytes().all(|b| b.is_ascii_digit()) || mac_hex.len() != 64 {
            return Err(unauthorized());
        }
        let Ok(expires_at) = expiry.parse::<u64>() else { return Err(unauthorized()) };
        let Ok(given) = hex::decode(mac_hex) else { return Err(unauthorized()) };
        self.token_mac(session, expiry).verify_slice(&given).map_err(|_| unauthorized())?;
        if expires_at <= now {
            return Err(ProtocolError::TokenExpired { session: session.to_string(), expired_at: expires_at });
        }
        Ok(expires_at)
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
    fn token_is_expiry_dot_hmac_sha256_hex_of_the_session_id_and_expiry() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let s = secret();
        let id = SessionId::parse("xyz123").unwrap();
        let token = s.token_expiring_at(&id, 1_800_000_000);
        let mut mac = HmacSha256::new_from_slice(b"0123456789abcdef0123456789abcdef").unwrap();
        mac.update(b"xyz123.1800000000");
        assert_eq!(token, format!("1800000000.{}", hex::encode(mac.finalize().into_bytes())));
        assert_eq!(s.verify_token_at(&id, &token, 1_799_999_999), Ok(1_800_000_000));
        assert!(token.len() <= MAX_TOKEN_LEN);
        // The default token is valid now for the default lifetime.
        let now = unix_now();
        let expires = s.verify_token(&id, &s.token_for(&id)).unwrap();
        assert!((now + DEFAULT_TOKEN_TTL.as_secs()..=now + DEFAULT_TOKEN_TTL.as_secs() + 5).contains(&expires), "{expires}");
    }

    #[test]
    fn tokens_expire_and_say_so() {
        let s = secret();
        let id = SessionId::parse("xyz123").unwrap();
        let issued = s.issue_token(&id, 1000, Duration::from_secs(60));
        assert_eq!(issued.expires_at, 1060);
        assert_eq!(s.verify_token_at(&id, &issued.token, 1059), Ok(1060));
        for now in [1060, 1061, u64::MAX] {
            let err = s.verify_token_at(&id, &issued.token, now).unwrap_err();
            assert_eq!(err, ProtocolError::TokenExpired { session: "xyz123".into(), expired_at: 1060 });
            assert_eq!(err.code(), crate::ErrorCode::Unauthorized);
            let text = err.to_string();
            assert!(text.contains("expired") && text.contains("/api/sessions/xyz123/renew"), "{text}");
        }
        // A forged token with an expiry in the past is wrong, not expired: only the
        // secret's holder learns about expiry.
        let forged = format!("1.{}", "ab".repeat(32));
        assert!(matches!(s.verify_token_at(&id, &forged, 1000), Err(ProtocolError::Unauthorized { .. })));
        // Moving a genuine token's expiry breaks its MAC.
        let (_, mac) = issued.token.split_once('.').unwrap();
        let extended = format!("999999.{mac}");
        assert!(matches!(s.verify_token_at(&id, &extended, 1000), Err(ProtocolError::Unauthorized { .. })));
        // An expiry with leading zeros is another text, so another MAC.
        let padded = format!("0{}", issued.token);
        assert!(matches!(s.verify_token_at(&id, &padded, 1000), Err(ProtocolError::Unauthorized { .. })));
    }

    #[test]
    fn wrong_tokens_are_rejected() {
        let s = secret();
        let id = SessionId::parse("xyz123").unwrap();
        let other = SessionId::parse("xyz124").unwrap();
        let token = s.token_for(&id);
        assert!(s.verify_token(&other, &token).is_err());
        let dot = token.find('.').unwrap();
        let mut flipped = token.clone().into_bytes();
        let i = dot + 10;
        flipped[i] = if flipped[i] == b'0' { b'1' } else { b'0' };
        assert!(s.verify_token(&id, std::str::from_utf8(&flipped).unwrap()).is_err());
        assert!(s.verify_token(&id, "").is_err());
        assert!(s.verify_token(&id, ".").is_err());
        assert!(s.verify_token(&id, &format!("{}.{}", &token[..dot], "z".repeat(64))).is_err());
        assert!(s.verify_token(&id, &token[..token.len() - 1]).is_err());
        assert!(s.verify_token(&id, &format!("+{}", &token[..])).is_err());
        assert!(s.verify_token(&id, &format!("{}{}", "9".repeat(21), &token[dot..])).is_err());
        assert!(s.verify_token(&id, &"9".repeat(MAX_TOKEN_LEN + 1)).is_err());
        // The old form, a bare MAC without expiry, is no longer a token.
        let mut bare = s.mac();
        bare.update(b"xyz123");
        assert!(s.verify_token(&id, &hex::encode(bare.finalize().into_bytes())).is_err());
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
        assert!(!s.is_public());
        assert!(SharedSecret::new(PUBLIC_SECRETS[0]).unwrap().is_public());
    }
}
