//! AFL target: `camgate::fuzzing::ws_decoder` (what it checks is documented there).
fn main() {
    afl::fuzz!(|data: &[u8]| camgate::fuzzing::ws_decoder(data));
}
