//! AFL target: `camgate::fuzzing::relay_protocol` (what it checks is documented there).
fn main() {
    afl::fuzz!(|data: &[u8]| camgate::fuzzing::relay_protocol(data));
}
