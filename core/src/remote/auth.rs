//! Shared-secret access to `sendpath serve`: the server sends a fresh random challenge, the
//! client answers HMAC-SHA256(token, context + challenge), the server checks the answer in
//! constant time. The token itself never crosses the wire, and an answer is good for one
//! connection only.

use crate::error::{Error, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Read;
use std::path::Path;

/// Bound on a token file.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Bytes of randomness in a challenge.
const CHALLENGE_BYTES: usize = 32;
/// Bound into every answer, so an answer cannot be replayed to another protocol.
const CONTEXT: &[u8] = b"sendpath-control/1 challenge ";

/// A shared secret, read from a file (surrounding whitespace removed).
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({} bytes)", self.0.len())
    }
}

impl Token {
    /// Reads a token file: 1 to [`MAX_TOKEN_BYTES`] bytes once trimmed.
    pub fn from_file(path: &Path) -> Result<Token> {
        let bad = |m: String| Error::InvalidSpec(format!("--token-file {}: {m}", path.display()));
        let f = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let mut raw = Vec::new();
        f.take(MAX_TOKEN_BYTES as u64 + 1024)
            .read_to_end(&mut raw)
            .map_err(|e| bad(e.to_string()))?;
        let token = raw.trim_ascii().to_vec();
        if token.is_empty() {
            return Err(bad("the file is empty".into()));
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(bad(format!("longer than {MAX_TOKEN_BYTES} bytes")));
        }
        Ok(Token(token))
    }

    /// A token from bytes (tests).
    pub fn new(bytes: &[u8]) -> Token {
        Token(bytes.to_vec())
    }

    fn mac(&self, challenge: &str) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(CONTEXT);
        m.update(challenge.as_bytes());
        m
    }

    /// The answer to `challenge`, as hex.
    pub fn answer(&self, challenge: &str) -> String {
        hex(&self.mac(challenge).finalize().into_bytes())
    }

    /// Whether `answer` (hex) is this token's answer to `challenge`, compared in constant time.
    pub fn accepts(&self, challenge: &str, answer: &str) -> bool {
        match unhex(answer) {
            Some(bytes) => self.mac(challenge).verify_slice(&bytes).is_ok(),
            None => false,
        }
    }
}

/// A fresh challenge: random bytes from the kernel, as hex.
pub fn challenge() -> Result<String> {
    let mut b = [0u8; CHALLENGE_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::io("read /dev/urandom for a challenge", e))?;
    Ok(hex(&b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 256 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_answers_the_same_challenge() {
        let t = Token::new(b"s3cret");
        let c = challenge().unwrap();
        assert_eq!(c.len(), 64);
        assert_ne!(c, challenge().unwrap(), "challenges are fresh");
        let a = t.answer(&c);
        assert!(t.accepts(&c, &a));
        assert!(!a.contains("s3cret"));
        assert!(!Token::new(b"s3creT").accepts(&c, &a), "another token");
        assert!(!t.accepts(&challenge().unwrap(), &a), "another challenge");
        for bad in ["", "zz", "0", &a[..62], &"ab".repeat(200)] {
            assert!(!t.accepts(&c, bad), "{bad}");
        }
    }

    #[test]
    fn token_files_are_trimmed_and_bounded() {
        let dir = std::env::temp_dir().join(format!("sp-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t");
        std::fs::write(&p, "  abc\n").unwrap();
        assert!(Token::from_file(&p)
            .unwrap()
            .accepts("x", &Token::new(b"abc").answer("x")));
        std::fs::write(&p, "\n \n").unwrap();
        assert!(Token::from_file(&p)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        std::fs::write(&p, "a".repeat(MAX_TOKEN_BYTES + 1)).unwrap();
        assert!(Token::from_file(&p)
            .unwrap_err()
            .to_string()
            .contains("longer"));
        assert!(Token::from_file(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
