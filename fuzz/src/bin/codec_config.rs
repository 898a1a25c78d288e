//! AFL target: `camgate::fuzzing::codec_config` (what it checks is documented there).
fn main() {
    afl::fuzz!(|data: &[u8]| camgate::fuzzing::codec_config(data));
}
