//! AFL target: `camgate::fuzzing::thumbnail` (what it checks is documented there).
fn main() {
    afl::fuzz!(|data: &[u8]| camgate::fuzzing::thumbnail(data));
}
