//! Who owns a stream: rendezvous (highest-random-weight) hashing over the ready members.
//!
//! Every node, and the balancer's Lua (`deploy/haproxy/camgate.lua`), computes the same
//! owner from the same names, with no coordination: `score(m, s)` is a fixed 64-bit hash of
//! the member's name and the stream id, and the owner is the ready member with the highest
//! score (ties, which need a 64-bit collision, go to the smaller name).
//!
//! Invariants:
//! - The function is part of the cluster's protocol: nodes of different versions and the
//!   balancer must agree, so it is spelled out here (FNV-1a 64 over `name ‖ 0x00 ‖ id`,
//!   then the splitmix64 finalizer) instead of borrowing std's unstable `DefaultHasher`;
//!   the test vectors below are also checked against the Lua.
//! - Removing a member moves only the streams it owned; adding one moves only the streams
//!   it now wins (≈ 1/N of them), because every other pair's scores are unchanged.
//! - Relays never loop: a node counts itself as ready, so it relays only to a member that
//!   out-scores it, and scores strictly increase along any chain of relays.

/// FNV-1a, 64-bit.
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The splitmix64 finalizer: spreads FNV's weak low bits over the whole word.
fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How much member `member` wants stream `stream`.
pub fn score(member: &str, stream: &str) -> u64 {
    finalize(fnv1a64(&[member.as_bytes(), &[0], stream.as_bytes()]))
}

/// The owner of `stream` among `members` (`None` when there are none).
pub fn owner<'a>(members: impl IntoIterator<Item = &'a str>, stream: &str) -> Option<&'a str> {
    members
        .into_iter()
        .map(|m| (score(m, stream), m))
        // Highest score; on a tie the smaller name wins (so it compares as "greater").
        .max_by(|(sa, a), (sb, b)| sa.cmp(sb).then_with(|| b.cmp(a)))
        .map(|(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published vectors, shared with the balancer's Lua test and computed by an
    /// independent reference: `member<TAB>stream<TAB>score in hex`, and `# sN -> owner`.
    const VECTORS: &str = include_str!("../../tests/fixtures/rendezvous-vectors.txt");

    #[test]
    fn scores_and_owners_match_the_published_vectors() {
        let mut checked = 0;
        for line in VECTORS.lines() {
            if let Some(owned) = line.strip_prefix("# s") {
                let Some((n, expected)) = owned.split_once(" -> ") else {
                    continue;
                };
                let stream = format!("s{n}");
                assert_eq!(owner(["a", "b", "c"], &stream), Some(expected), "{stream}");
                checked += 1;
            } else if !line.starts_with('#') {
                let fields: Vec<&str> = line.split('\t').collect();
                let [member, stream, hex] = fields[..] else {
                    panic!("bad vector line {line:?}");
                };
                let expected = u64::from_str_radix(hex, 16).unwrap();
                assert_eq!(score(member, stream), expected, "{member} {stream}");
                checked += 1;
            }
        }
        assert!(checked >= 15, "{checked}");
    }

    #[test]
    fn fnv_matches_its_reference_values() {
        // The FNV reference: FNV-1a 64 of "" and "a".
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foobar"]), 0x8594_4171_f739_67e8);
        // Split input hashes like the concatenation.
        assert_eq!(fnv1a64(&[b"foo", b"bar"]), fnv1a64(&[b"foobar"]));
    }

    #[test]
    fn owner_is_the_highest_score_and_stable_under_order() {
        let members = ["a", "b", "c", "d"];
        for i in 0..200 {
            let stream = format!("s{i}");
            let best = members.iter().max_by_key(|m| score(m, &stream)).copied();
            assert_eq!(owner(members, &stream), best);
            let reversed: Vec<&str> = members.iter().rev().copied().collect();
            assert_eq!(owner(reversed, &stream), best);
        }
        assert_eq!(owner([], "x"), None);
    }

    #[test]
    fn membership_changes_move_only_the_streams_that_must_move() {
        let three = ["a", "b", "c"];
        let four = ["a", "b", "c", "d"];
        let streams: Vec<String> = (0..1000).map(|i| format!("cam-{i}")).collect();
        let mut moved_on_add = 0;
        let mut moved_on_remove = 0;
        for s in &streams {
            let before = owner(three, s).unwrap();
            let after = owner(four, s).unwrap();
            if before != after {
                // Only to the new member.
                assert_eq!(after, "d");
                moved_on_add += 1;
            }
            let without_b = owner(["a", "c"], s).unwrap();
            if before != without_b {
                assert_eq!(before, "b", "only b's streams move when b leaves");
                moved_on_remove += 1;
            }
        }
        // ≈ 1/4 and ≈ 1/3 of 1000.
        assert!((180..=320).contains(&moved_on_add), "{moved_on_add}");
        assert!((250..=420).contains(&moved_on_remove), "{moved_on_remove}");
    }

    #[test]
    fn relays_cannot_loop() {
        // Nodes may disagree about third members (a probe not answered yet), yet a chain of
        // relays never comes back: each node counts itself, so it relays only to a member
        // that out-scores it.
        let others: [&[&str]; 4] = [&[], &["c"], &["d"], &["c", "d"]];
        for i in 0..300 {
            let s = format!("s{i}");
            for a_sees in others {
                for b_sees in others {
                    let a_view: Vec<&str> = ["a", "b"].iter().chain(a_sees).copied().collect();
                    let b_view: Vec<&str> = ["b", "a"].iter().chain(b_sees).copied().collect();
                    let a_relays_to_b = owner(a_view, &s) == Some("b");
                    let b_relays_to_a = owner(b_view, &s) == Some("a");
                    assert!(!(a_relays_to_b && b_relays_to_a), "{s}");
                }
            }
        }
    }
}
