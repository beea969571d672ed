//! Shared-secret access to `sendpath serve`, both ways, bound to the connection (control
//! protocol 2):
//! - the server's greeting carries a fresh random challenge; the driver's login answers it
//!   with HMAC-SHA256(token, "driver" + both challenges) and carries a fresh challenge of its
//!   own; the server checks the answer in constant time and proves the token in its welcome
//!   with HMAC-SHA256(token, "server" + both challenges). Neither end answers for the other's
//!   role, so a relay cannot reflect one end's answer to the other;
//! - from then on every line in each direction carries a MAC under a session key derived with
//!   HKDF-SHA256 from the token and both challenges, over its direction, its number in that
//!   direction (from 0) and its exact bytes ([`SessionKey`]). A line altered, replayed,
//!   reordered, reflected or injected in flight fails its check and ends the connection.
//!
//! The token itself never crosses the wire. No cryptography is written here: HMAC, SHA-256 and
//! HKDF come from the RustCrypto crates.

use crate::error::{Error, Result};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Read;
use std::path::Path;

/// Bound on a token file.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Bytes of randomness in a challenge (each end makes one per connection).
const CHALLENGE_BYTES: usize = 32;
/// Bound into every proof and key, so none of them serves another protocol or version.
const CONTEXT: &str = "sendpath-control/2";

/// Who sends a line or a proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `sendpath run|sweep --remote`.
    Driver,
    /// `sendpath serve`.
    Server,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Driver => "driver",
            Role::Server => "server",
        }
    }

    /// The other end.
    pub fn peer(self) -> Role {
        match self {
            Role::Driver => Role::Server,
            Role::Server => Role::Driver,
        }
    }
}

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

    fn mac(&self, by: Role, server_challenge: &str, driver_challenge: &str) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in [
            CONTEXT,
            " ",
            by.label(),
            " ",
            server_challenge,
            " ",
            driver_challenge,
        ] {
            m.update(part.as_bytes());
        }
        m
    }

    /// `by`'s proof that it holds the token, for this pair of challenges, as hex.
    pub fn prove(&self, by: Role, server_challenge: &str, driver_challenge: &str) -> String {
        hex(&self
            .mac(by, server_challenge, driver_challenge)
            .finalize()
            .into_bytes())
    }

    /// Whether `proof` (hex) is `by`'s proof for this pair of challenges, compared in constant
    /// time.
    pub fn accepts(
        &self,
        by: Role,
        server_challenge: &str,
        driver_challenge: &str,
        proof: &str,
    ) -> bool {
        match unhex(proof) {
            Some(bytes) => self
                .mac(by, server_challenge, driver_challenge)
                .verify_slice(&bytes)
                .is_ok(),
            None => false,
        }
    }

    /// The key every line of this connection is checked with after login.
    pub fn session_key(&self, server_challenge: &str, driver_challenge: &str) -> SessionKey {
        let salt = format!("{server_challenge} {driver_challenge}");
        let hk = Hkdf::<Sha256>::new(Some(salt.as_bytes()), &self.0);
        let mut key = [0u8; 32];
        hk.expand(format!("{CONTEXT} session key").as_bytes(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        SessionKey(key)
    }
}

/// The MAC key of one logged-in control connection.
#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    fn mac(&self, by: Role, n: u64, line: &[u8]) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(CONTEXT.as_bytes());
        m.update(b" line ");
        m.update(by.label().as_bytes());
        m.update(&n.to_le_bytes());
        m.update(line);
        m
    }

    /// The MAC of line number `n` that `by` sends, as hex.
    pub fn seal(&self, by: Role, n: u64, line: &[u8]) -> String {
        hex(&self.mac(by, n, line).finalize().into_bytes())
    }

    /// Whether `mac` (hex) is the MAC of line `n` from `by`, compared in constant time.
    pub fn check(&self, by: Role, n: u64, line: &[u8], mac: &str) -> bool {
        match unhex(mac) {
            Some(bytes) => self.mac(by, n, line).verify_slice(&bytes).is_ok(),
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

/// Whether `c` has the shape of a challenge (a peer's short or reused-looking challenge would
/// weaken the key the two derive).
pub fn is_challenge(c: &str) -> bool {
    c.len() == 2 * CHALLENGE_BYTES && unhex(c).is_some()
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
    fn each_end_proves_the_token_for_its_own_role_and_these_challenges() {
        let t = Token::new(b"s3cret");
        let (sc, dc) = (challenge().unwrap(), challenge().unwrap());
        assert_eq!(sc.len(), 64);
        assert!(is_challenge(&sc) && !is_challenge(&sc[..62]) && !is_challenge(&"zz".repeat(32)));
        assert_ne!(sc, dc, "challenges are fresh");
        let a = t.prove(Role::Driver, &sc, &dc);
        assert!(t.accepts(Role::Driver, &sc, &dc, &a));
        assert!(!a.contains("s3cret"));
        assert!(
            !t.accepts(Role::Server, &sc, &dc, &a),
            "a driver's answer is no server proof"
        );
        assert!(!t.accepts(Role::Driver, &dc, &sc, &a), "challenges swapped");
        assert!(
            !Token::new(b"s3creT").accepts(Role::Driver, &sc, &dc, &a),
            "another token"
        );
        let other = challenge().unwrap();
        assert!(
            !t.accepts(Role::Driver, &other, &dc, &a),
            "another challenge"
        );
        for bad in ["", "zz", "0", &a[..62], &"ab".repeat(200)] {
            assert!(!t.accepts(Role::Driver, &sc, &dc, bad), "{bad}");
        }
    }

    #[test]
    fn a_line_checks_only_with_its_key_direction_number_and_bytes() {
        let t = Token::new(b"s3cret");
        let (sc, dc) = (challenge().unwrap(), challenge().unwrap());
        let k = t.session_key(&sc, &dc);
        let line = br#"{"type":"bye"}"#;
        let mac = k.seal(Role::Driver, 3, line);
        assert!(k.check(Role::Driver, 3, line, &mac));
        assert!(!k.check(Role::Server, 3, line, &mac), "reflected");
        assert!(
            !k.check(Role::Driver, 4, line, &mac),
            "replayed or reordered"
        );
        assert!(
            !k.check(Role::Driver, 3, br#"{"type":"byd"}"#, &mac),
            "altered"
        );
        let other = t.session_key(&sc, &challenge().unwrap());
        assert!(
            !other.check(Role::Driver, 3, line, &mac),
            "another connection"
        );
        assert!(!Token::new(b"x")
            .session_key(&sc, &dc)
            .check(Role::Driver, 3, line, &mac));
        assert!(!k.check(Role::Driver, 3, line, "not hex"));
    }

    #[test]
    fn token_files_are_trimmed_and_bounded() {
        let dir = std::env::temp_dir().join(format!("sp-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t");
        std::fs::write(&p, "  abc\n").unwrap();
        let (sc, dc) = ("x", "y");
        assert!(Token::from_file(&p).unwrap().accepts(
            Role::Driver,
            sc,
            dc,
            &Token::new(b"abc").prove(Role::Driver, sc, dc)
        ));
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
