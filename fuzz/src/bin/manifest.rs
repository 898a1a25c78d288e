//! AFL target: `camgate::fuzzing::manifest` (what it checks is documented there).
fn main() {
    afl::fuzz!(|data: &[u8]| camgate::fuzzing::manifest(data));
}
