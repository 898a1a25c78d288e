//! Test fixture: a plugin library built for a (hypothetical) ABI v3. The gateway must refuse
//! it with a message naming both versions, without calling anything else in it.

/// The version-independent probe: this library speaks ABI v3.
#[unsafe(no_mangle)]
pub extern "C" fn camgate_plugin_abi_version() -> u32 {
    3
}

/// A v3 entry point with a layout the v2 host does not know.
#[unsafe(no_mangle)]
pub extern "C" fn camgate_plugin_entry_v3() -> i32 {
    panic!("a v2 host must never call a v3 entry point")
}
