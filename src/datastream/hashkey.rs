//! The 128-bit hash-key space: partition key → MD5 → big-endian `u128` ([`HashKey`]), the
//! inclusive ranges shards own ([`HashKeyRange`]) and the even split of the space into N shards
//! (the same boundaries Kinesis gives a new stream).

use std::fmt;

use md5::{Digest, Md5};

use super::error::DsError;

/// A point of the hash-key space: `0 ..= 2^128 - 1`. Printed in decimal, as Kinesis does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKey(pub u128);

impl HashKey {
    pub const MAX: HashKey = HashKey(u128::MAX);

    /// The hash key of a partition key: its MD5 digest read as a big-endian integer.
    pub fn of_partition_key(key: &str) -> HashKey {
        let digest: [u8; 16] = Md5::digest(key.as_bytes()).into();
        HashKey(u128::from_be_bytes(digest))
    }

    /// Parses an `ExplicitHashKey` / `NewStartingHashKey`: decimal, `0|([1-9]\d{0,38})` (a
    /// schema violation is `ValidationException`), at most `2^128 - 1` (`InvalidArgument`).
    pub fn parse(s: &str, member: &str) -> Result<HashKey, DsError> {
        super::validate::decimal(s, member, 39)?;
        s.parse::<u128>().map(HashKey).map_err(|_| {
            let name = member.rsplit('.').next().unwrap_or(member);
            let mut upper = name.chars();
            let name: String =
                upper.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(upper).collect();
            DsError::InvalidArgument(format!(
                "Invalid {name}. {name} must be in the range: [0, 2^128-1]. Specified value was {s}"
            ))
        })
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// An inclusive range of hash keys owned by one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashKeyRange {
    pub start: HashKey,
    pub end: HashKey,
}

impl HashKeyRange {
    pub const FULL: HashKeyRange = HashKeyRange { start: HashKey(0), end: HashKey::MAX };

    pub fn contains(&self, k: HashKey) -> bool {
        self.start <= k && k <= self.end
    }

    /// True if `other` starts right after `self` ends.
    pub fn is_followed_by(&self, other: &HashKeyRange) -> bool {
        self.end.0.checked_add(1) == Some(other.start.0)
    }

    pub fn overlaps(&self, other: &HashKeyRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

/// The space split into `n` (≥ 1) contiguous ranges of equal width `floor(2^128 / n)`, the last
/// one taking the remainder: shard `i` starts at `i * floor(2^128 / n)`.
pub fn uniform_ranges(n: u32) -> Vec<HashKeyRange> {
    let n = u128::from(n.max(1));
    if n == 1 {
        return vec![HashKeyRange::FULL];
    }
    // floor(2^128 / n) without 2^128: (2^128 - 1) = q*n + r, so 2^128 = q*n + (r + 1).
    let (q, r) = (u128::MAX / n, u128::MAX % n);
    let width = if r + 1 == n { q + 1 } else { q };
    (0..n)
        .map(|i| {
            let start = i * width;
            let end = if i + 1 == n { u128::MAX } else { (i + 1) * width - 1 };
            HashKeyRange { start: HashKey(start), end: HashKey(end) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_vectors() {
        // RFC 1321 test suite: MD5("") = d41d8cd98f00b204e9800998ecf8427e,
        // MD5("abc") = 900150983cd24fb0d6963f7d28e17f72.
        assert_eq!(HashKey::of_partition_key("").0, 0xd41d8cd98f00b204e9800998ecf8427e);
        assert_eq!(HashKey::of_partition_key("abc").0, 0x900150983cd24fb0d6963f7d28e17f72);
        // Decimal as Kinesis prints it.
        assert_eq!(
            HashKey::of_partition_key("abc").to_string(),
            u128::from_str_radix("900150983cd24fb0d6963f7d28e17f72", 16).unwrap().to_string()
        );
    }

    #[test]
    fn uniform_split_matches_kinesis_boundaries() {
        let one = uniform_ranges(1);
        assert_eq!(one, vec![HashKeyRange::FULL]);
        let four = uniform_ranges(4);
        assert_eq!(four[1].start.to_string(), "85070591730234615865843651857942052864");
        assert_eq!(four[0].end.to_string(), "85070591730234615865843651857942052863");
        assert_eq!(four[3].end, HashKey::MAX);
        let three = uniform_ranges(3);
        assert_eq!(three[0].end.to_string(), "113427455640312821154458202477256070484");
        assert_eq!(three[1].start.to_string(), "113427455640312821154458202477256070485");
        assert_eq!(three[2].start.to_string(), "226854911280625642308916404954512140970");
        for n in [1u32, 2, 3, 5, 7, 64, 500, 1000] {
            let r = uniform_ranges(n);
            assert_eq!(r.len(), n as usize);
            assert_eq!(r[0].start, HashKey(0));
            assert_eq!(r[r.len() - 1].end, HashKey::MAX);
            for w in r.windows(2) {
                assert!(w[0].is_followed_by(&w[1]), "n={n}");
            }
        }
    }

    #[test]
    fn parses_explicit_hash_keys_strictly() {
        assert_eq!(HashKey::parse("0", "K").unwrap(), HashKey(0));
        assert_eq!(
            HashKey::parse("340282366920938463463374607431768211455", "K").unwrap(),
            HashKey::MAX
        );
        assert!(matches!(
            HashKey::parse("340282366920938463463374607431768211456", "K"),
            Err(DsError::InvalidArgument(_))
        ));
        for bad in ["", "01", "-1", "1e5", "12a", &"9".repeat(40)] {
            assert!(matches!(HashKey::parse(bad, "K"), Err(DsError::Validation(_))), "{bad}");
        }
    }
}
