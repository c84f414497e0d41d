//! Random tokens that authenticate a line of output, kept masked in memory.
//!
//! The supervisor proves to the CLI, and a check's child proves to the
//! supervisor, that a line of output is its own by starting it with a token
//! that the reader handed over on standard input. Code under test runs in the
//! same process as the token, so the token is kept XOR-masked with a second
//! random value: a scan of the process's memory for a token-shaped string
//! finds nothing. Code written to reverse the harness can still unmask it;
//! GRADING.md states that limit.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read};
use std::time::SystemTime;

/// Bytes of randomness in a token; it prints as twice as many hex digits.
const TOKEN_BYTES: usize = 16;

/// A token, stored masked.
#[derive(Clone)]
pub struct Secret {
    masked: [u8; TOKEN_BYTES * 2],
    mask: [u8; TOKEN_BYTES * 2],
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(..)")
    }
}

impl Secret {
    /// Creates a fresh random token, from the standard library's randomly
    /// seeded hasher, so that no code under test can predict it.
    pub fn fresh() -> Secret {
        let random = random_bytes::<TOKEN_BYTES>();
        let mut text = [0u8; TOKEN_BYTES * 2];
        for (index, byte) in random.iter().enumerate() {
            text[index * 2] = hex_digit(byte >> 4);
            text[index * 2 + 1] = hex_digit(byte & 0x0f);
        }
        Secret::from_text(&mut text)
    }

    /// Reads a token from standard input, bypassing the standard library's
    /// input buffer so that no copy of it stays there.
    ///
    /// # Errors
    ///
    /// Returns an error when standard input does not start with a token.
    pub fn read_from_stdin() -> io::Result<Secret> {
        // A read into a buffer larger than stdin's own buffer skips that buffer.
        let mut buffer = vec![0u8; 64 * 1024];
        let mut filled = 0;
        let mut stdin = io::stdin().lock();
        while filled < TOKEN_BYTES * 2 + 1 {
            let read = stdin.read(&mut buffer[filled..])?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        let secret = buffer
            .get(..TOKEN_BYTES * 2)
            .filter(|text| text.iter().all(u8::is_ascii_hexdigit))
            .map(|text| {
                let mut copy = [0u8; TOKEN_BYTES * 2];
                copy.copy_from_slice(text);
                Secret::from_text(&mut copy)
            });
        buffer.fill(0);
        std::hint::black_box(&buffer);
        secret.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "standard input did not start with a token",
            )
        })
    }

    /// Returns the token as text, for writing it.
    pub fn reveal(&self) -> String {
        self.masked
            .iter()
            .zip(self.mask)
            .map(|(byte, mask)| char::from(byte ^ mask))
            .collect()
    }

    /// Returns the rest of `line` after the token and one space, or `None`
    /// when the line does not start with the token.
    pub fn strip<'a>(&self, line: &'a str) -> Option<&'a str> {
        let bytes = line.as_bytes();
        let token_matches = bytes.len() > self.masked.len()
            && bytes
                .iter()
                .zip(self.masked.iter().zip(self.mask))
                .all(|(byte, (masked, mask))| *byte == masked ^ mask);
        let rest = line.get(self.masked.len()..)?;
        if token_matches {
            rest.strip_prefix(' ')
        } else {
            None
        }
    }

    fn from_text(text: &mut [u8; TOKEN_BYTES * 2]) -> Secret {
        let mask = random_bytes::<{ TOKEN_BYTES * 2 }>();
        let mut masked = [0u8; TOKEN_BYTES * 2];
        for index in 0..masked.len() {
            masked[index] = text[index] ^ mask[index];
        }
        text.fill(0);
        std::hint::black_box(&text);
        Secret { masked, mask }
    }
}

fn hex_digit(value: u8) -> u8 {
    b"0123456789abcdef"[usize::from(value)]
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    for (round, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_usize(round);
        hasher.write_u128(nanos.as_nanos());
        chunk.copy_from_slice(&hasher.finish().to_le_bytes()[..chunk.len()]);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_tokens_differ() {
        assert_ne!(Secret::fresh().reveal(), Secret::fresh().reveal());
    }

    #[test]
    fn strip_accepts_only_own_token() {
        let secret = Secret::fresh();
        let line = format!("{} {{\"event\":\"plan\"}}", secret.reveal());
        assert_eq!(secret.strip(&line), Some("{\"event\":\"plan\"}"));
        let other = format!("{} {{}}", Secret::fresh().reveal());
        assert_eq!(secret.strip(&other), None);
        assert_eq!(secret.strip("short"), None);
    }

    #[test]
    fn token_is_hex_of_fixed_length() {
        let text = Secret::fresh().reveal();
        assert_eq!(text.len(), TOKEN_BYTES * 2);
        assert!(text.bytes().all(|byte| byte.is_ascii_hexdigit()), "{text}");
    }
}
