//! AFL target: `camgate::fuzzing::request` (what it checks is documented there).
fn main() {
    afl::fuzz!(|data: &[u8]| camgate::fuzzing::request(data));
}
