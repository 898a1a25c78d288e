//! Test fixture: an ordinary shared library without the camgate plugin symbols.

/// Something to export so the library is not empty.
#[unsafe(no_mangle)]
pub extern "C" fn unrelated_function() -> u32 {
    42
}
