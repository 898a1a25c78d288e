//! AFL target: `camgate::fuzzing::control` (what it checks is documented there).
fn main() {
    afl::fuzz!(|data: &[u8]| camgate::fuzzing::control(data));
}
