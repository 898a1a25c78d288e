//! Test fixture: a plugin library built for a (hypothetical) ABI v2. The gateway must refuse
//! it with a message naming both versions, without calling anything else in it.

/// The version-independent probe: this library speaks ABI v2.
#[unsafe(no_mangle)]
pub extern "C" fn camgate_plugin_abi_version() -> u32 {
    2
}

/// A v2 entry point with a layout the v1 host does not know.
#[unsafe(no_mangle)]
pub extern "C" fn camgate_plugin_entry_v2() -> i32 {
    panic!("a v1 host must never call a v2 entry point")
}
