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

/// 16 bytes as a UUID string of the given version (`0x40` random, `0x80` custom), with
/// the RFC 4122 variant bits set.
pub fn uuid_from_bytes(mut bytes: [u8; 16], version: u8) -> String {
    bytes[6] = (bytes[6] & 0x0f) | version;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A random (version 4) UUID.
pub fn random_uuid() -> String {
    uuid_from_bytes(rand::random(), 0x40)
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
