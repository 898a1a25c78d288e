//! AFL target: `camgate::fuzzing::annexb` (what it checks is documented there).
fn main() {
    afl::fuzz!(|data: &[u8]| camgate::fuzzing::annexb(data));
}
