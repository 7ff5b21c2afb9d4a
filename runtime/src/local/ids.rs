//! Ids in API Gateway's shape: 16 characters of URL-safe base64 ending in `=`
//! (e.g. `R0oXAdfD0kwCH6w=`), so that code which forgets to URL-encode them breaks
//! locally, as it would on AWS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use rand::RngCore;

/// A new connection, request or message id.
pub fn new_id() -> String {
    let mut bytes = [0u8; 11];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE.encode(bytes)
}

/// A 10-character lowercase API id, like `a1b2c3d4e5`.
pub fn new_api_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..10)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_aws() {
        for _ in 0..200 {
            let id = new_id();
            assert_eq!(id.len(), 16);
            assert!(id.ends_with('='));
            assert!(!id.ends_with("=="));
            assert!(
                id[..15]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            );
        }
        assert_ne!(new_id(), new_id());
        assert_eq!(new_api_id().len(), 10);
    }
}
