//! Artifact row ids: 20-character Crockford base32 ULIDs as the Python pipe makes them
//! (so its stored rows stay readable): 16 characters of the time in nanoseconds (masked to 80 bits) then 4 random
//! characters (20 bits). The clock has millisecond resolution here, so the sub-millisecond part of
//! the time is random too: two ids made in the same millisecond differ in about 40 random bits.

use crate::caps::Env;

/// Crockford's base32 alphabet (no I, L, O, U).
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Length of an id.
pub const LEN: usize = 20;

const TIME_CHARS: usize = 16;
const RANDOM_CHARS: usize = 4;

fn encode(mut value: u128, chars: usize, out: &mut String) {
    let mut buf = vec![0u8; chars];
    for slot in buf.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    out.extend(buf.into_iter().map(char::from));
}

/// A fresh id from the clock and the host's randomness.
pub fn new(env: &impl Env) -> String {
    let sub_ms = u128::from(env.random_u64() % 1_000_000);
    let ns = u128::from(env.now_ms()) * 1_000_000 + sub_ms;
    let mut out = String::with_capacity(LEN);
    encode(ns & ((1u128 << 80) - 1), TIME_CHARS, &mut out);
    encode(
        u128::from(env.random_u64() & ((1 << 20) - 1)),
        RANDOM_CHARS,
        &mut out,
    );
    out
}

/// Whether `s` is exactly a 20-character id in the alphabet (upper case, as we write them).
pub fn is_valid(s: &str) -> bool {
    s.len() == LEN && s.bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FixedEnv;
    use std::collections::HashSet;

    #[test]
    fn ids_are_twenty_crockford_characters_and_distinct_within_a_millisecond() {
        let env = FixedEnv::default();
        let ids: HashSet<String> = (0..10_000).map(|_| new(&env)).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| is_valid(id)), "{ids:?}");
    }

    #[test]
    fn ids_sort_by_time() {
        let env = FixedEnv::default();
        let a = new(&env);
        env.now.set(env.now.get() + 1);
        let b = new(&env);
        assert!(a < b, "{a} {b}");
    }

    #[test]
    fn validation_is_strict() {
        assert!(is_valid("01ARZ3NDEKTSV4RRFFQ6"));
        for bad in [
            "01ARZ3NDEKTSV4RRFFQ",
            "01ARZ3NDEKTSV4RRFFQ69",
            "01ARZ3NDEKTSV4RRFFQI",
            "01arz3ndektsv4rrffq6",
            "01ARZ3NDEKTSV4RRFFQ ",
            "",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
