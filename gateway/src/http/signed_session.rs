//! Browser sessions every cluster node can check: the session id carries its own proof.
//!
//! A single gateway keeps sessions in memory (`auth::Sessions`). Behind a balancer, a
//! browser's requests reach several nodes (the page from one, each camera's socket from its
//! owner), and a session only one of them knows would be refused by the others. So in
//! cluster mode a session id is `c1.<expiry>.<nonce>.<mac>`: `mac` is HMAC-SHA256, keyed
//! with the token the browser signed in with, over `c1.<expiry>.<nonce>`. Every node has
//! the same tokens (the same manifest), so every node can check it, and learns the token.
//!
//! Invariants: only a holder of a configured token can make a valid id (forging one for a
//! token means knowing it); a token removed from the manifest ends its sessions on every
//! node at once (no configured token verifies them any longer); the MAC is compared in
//! constant time (`ring::hmac::verify`); ids are never logged. What a stateless id cannot
//! do is be revoked everywhere: signing out forgets the id on the node that handled it and
//! clears the browser's cookie; a copy of the id replayed elsewhere works until it expires
//! (`auth::SESSION_TTL`), like any bearer credential (documented in `docs/security.md`).

use ring::hmac;

/// The prefix of a signed id (the version of this format).
pub const PREFIX: &str = "c1.";

/// A signed session id for `token`, valid until `expires` (Unix seconds).
pub fn sign(token: &str, expires: u64, nonce: &[u8; 16]) -> String {
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let body = format!("{PREFIX}{expires}.{nonce}");
    let tag = hmac::sign(&key(token), body.as_bytes());
    let mac: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{body}.{mac}")
}

/// The token (one of `tokens`) that signed `id`, if `id` is a signed session that has not
/// expired at `now` (Unix seconds).
pub fn verify<'t>(
    id: &str,
    now: u64,
    tokens: impl IntoIterator<Item = &'t str>,
) -> Option<&'t str> {
    let (body, mac) = id.rsplit_once('.')?;
    let rest = body.strip_prefix(PREFIX)?;
    let (expires, nonce) = rest.split_once('.')?;
    let expires: u64 = expires.parse().ok()?;
    if expires <= now || nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mac = decode_hex(mac)?;
    tokens
        .into_iter()
        .find(|token| hmac::verify(&key(token), body.as_bytes(), &mac).is_ok())
}

/// The HMAC key of a token, with the purpose mixed in (the token may be used elsewhere).
fn key(token: &str) -> hmac::Key {
    let derived = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, b"camgate browser session v1"),
        token.as_bytes(),
    );
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: [u8; 16] = [7; 16];

    #[test]
    fn any_node_with_the_token_accepts_it_until_it_expires() {
        let id = sign("viewer-token-0123456789", 1000, &NONCE);
        assert!(id.starts_with("c1.1000."));
        let tokens = ["admin-token-0123456789", "viewer-token-0123456789"];
        assert_eq!(verify(&id, 999, tokens), Some("viewer-token-0123456789"));
        assert_eq!(verify(&id, 1000, tokens), None, "expired");
        assert_eq!(
            verify(&id, 999, ["admin-token-0123456789"]),
            None,
            "token removed"
        );
    }

    #[test]
    fn tampering_is_refused() {
        let id = sign("viewer-token-0123456789", 1000, &NONCE);
        let tokens = ["viewer-token-0123456789"];
        let later = id.replacen("c1.1000.", "c1.9999.", 1);
        assert_eq!(verify(&later, 999, tokens), None, "expiry moved");
        let mut flipped = id.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            verify(std::str::from_utf8(&flipped).unwrap(), 999, tokens),
            None
        );
        for junk in ["", "c1.", "c1.x.y.z", "0123abcd", "c1.1000.00.00"] {
            assert_eq!(verify(junk, 0, tokens), None, "{junk}");
        }
    }
}
