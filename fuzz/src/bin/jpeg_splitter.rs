//! AFL target: `camgate::fuzzing::jpeg_splitter` (what it checks is documented there).
fn main() {
    afl::fuzz!(|data: &[u8]| camgate::fuzzing::jpeg_splitter(data));
}
