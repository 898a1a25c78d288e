//! The raw C ABI that crosses the shared-library boundary (version [`ABI_VERSION`]).
//!
//! Everything here is `#[repr(C)]`, plain integers, borrowed pointers and `extern "C"`
//! function pointers. No Rust std type, trait object, allocation or async handle crosses.
//!
//! Invariants both sides rely on:
//! - Strings and byte slices ([`StrRef`], [`ByteSlice`]) are *borrowed for the duration of the
//!   call only*. The receiver copies what it wants to keep. The only exception is
//!   [`PluginVTable`]'s `name`/`version`/`description`, which point at `'static` data inside
//!   the plugin library (libraries are never unloaded, so they stay valid).
//! - **Struct growth.** Every struct that may grow starts with a `size` field that its writer
//!   fills with its own `size_of`. A reader accepts a struct at least as large as the one it
//!   was built for and reads only the fields it knows; a smaller one is refused with
//!   [`STATUS_ABI_MISMATCH`]. The reader reads `size` on its own, through the raw pointer,
//!   before it builds or copies anything else from the struct. Fields are only ever
//!   appended. So a newer *writer* works with an older reader, and a newer reader refuses
//!   an older writer: the host may append to [`HostCallbacks`] (which it writes) without
//!   breaking existing plugins, while a change to a struct plugins write ([`PluginVTable`],
//!   [`FrameRef`], [`MediaFrameRef`]) that the host would rely on bumps [`ABI_VERSION`].
//! - **Old plugins keep loading.** Version 2 appended [`HostCallbacks::on_media`] and
//!   [`MediaFrameRef`]; nothing else changed. A v1 plugin exports [`ENTRY_SYMBOL_V1`] and
//!   reports [`ABI_VERSION_V1`]; its vtable has exactly the layout of [`PluginVTable`] and
//!   the v2 [`HostCallbacks`] starts with the whole v1 struct ([`HOST_CALLBACKS_V1_SIZE`]
//!   bytes), so the host loads it through the same types and it simply never calls
//!   `on_media`. These v1 items never change.
//! - **Optional callbacks appended within v2.** [`HostCallbacks::on_skip`] was appended
//!   after v2 shipped, without a version bump: a v2 host built before it passes a struct of
//!   [`HOST_CALLBACKS_V2_SIZE`] bytes. So a plugin accepts any struct of at least
//!   [`HOST_CALLBACKS_V2_SIZE`] bytes, copies only `size` bytes of it (the rest reads as
//!   absent: the field is an `Option` of a function pointer, null = `None`), and calls
//!   `on_skip` only when `size` covers it and it is set ([`crate::Host::skipped`] does
//!   both). Later optional callbacks follow the same rule.
//! - The vtable is written into a buffer the host owns ([`EntryFn`]): the host passes its
//!   own `size_of::<PluginVTable>()` as `out_size`; the plugin refuses a buffer smaller than
//!   its vtable and writes exactly its own `size` bytes. The host then reads `size` and
//!   `abi_version` alone, refuses a `size` below its own or above the buffer, and checks
//!   that every function pointer is set before it uses the vtable.
//! - A status code is an `i32`: [`STATUS_OK`] or one of the other `STATUS_*` constants.
//!   Details travel as text through an [`ErrorSink`].
//! - No panic unwinds across any function here: both sides catch panics at every crossing.

use std::ffi::c_void;
use std::marker::PhantomData;

/// The ABI version this crate implements. Bumped on any incompatible change to this module.
///
/// Version 2 added codec-aware frames ([`MediaFrameRef`], [`HostCallbacks::on_media`]).
pub const ABI_VERSION: u32 = 2;

/// The versioned entry symbol a plugin library exports (NUL-terminated for `dlsym`).
///
/// The version is part of the name so that a library built for another ABI version simply
/// does not have this symbol; [`ABI_VERSION_SYMBOL`] then tells the host which version it has.
pub const ENTRY_SYMBOL: &[u8] = b"camgate_plugin_entry_v2\0";

/// The previous ABI version, which the host still loads: JPEG frames through
/// [`HostCallbacks::on_frame`] only. Frozen.
pub const ABI_VERSION_V1: u32 = 1;

/// The entry symbol of an [`ABI_VERSION_V1`] library; same [`EntryFn`] signature and the
/// same [`PluginVTable`] layout as today. Frozen.
pub const ENTRY_SYMBOL_V1: &[u8] = b"camgate_plugin_entry_v1\0";

/// The size of the v1 [`HostCallbacks`] (everything before [`HostCallbacks::on_media`]):
/// what a v1 plugin requires of the host's struct. Frozen.
pub const HOST_CALLBACKS_V1_SIZE: usize = std::mem::offset_of!(HostCallbacks, on_media);

/// The size of the [`HostCallbacks`] v2 first shipped with (everything before
/// [`HostCallbacks::on_skip`]): the least a v2 plugin accepts. Frozen.
pub const HOST_CALLBACKS_V2_SIZE: usize = std::mem::offset_of!(HostCallbacks, on_skip);

/// A symbol every plugin exports whatever its ABI version: `extern "C" fn() -> u32`.
///
/// Its signature never changes, so the host can always ask a library which ABI it speaks
/// and refuse a mismatch with a precise message instead of calling into an unknown layout.
pub const ABI_VERSION_SYMBOL: &[u8] = b"camgate_plugin_abi_version\0";

/// Success.
pub const STATUS_OK: i32 = 0;
/// A failure explained by the text written to the [`ErrorSink`].
pub const STATUS_ERROR: i32 = 1;
/// The JSON configuration was rejected; the reason went to the [`ErrorSink`].
pub const STATUS_INVALID_CONFIG: i32 = 2;
/// Plugin code panicked; the panic was caught at the boundary.
pub const STATUS_PANIC: i32 = 3;
/// The two sides speak different ABI versions or struct sizes.
pub const STATUS_ABI_MISMATCH: i32 = 4;
/// Returned by the host's frame callback when it no longer accepts frames from this
/// instance (it is being stopped). The plugin should stop producing.
pub const STATUS_CLOSED: i32 = 5;

/// Source states a plugin reports through [`HostCallbacks::on_state`].
pub const STATE_CONNECTING: u32 = 1;
/// Frames are flowing.
pub const STATE_LIVE: u32 = 2;
/// The source lost its input and is trying again (with backoff).
pub const STATE_RETRYING: u32 = 3;
/// The source gave up; only a restart (by the host) helps.
pub const STATE_FAILED: u32 = 4;

/// [`MediaFrameRef::codec`]: `data` is one whole JPEG image (SOI to EOI).
pub const CODEC_JPEG: u32 = 1;
/// [`MediaFrameRef::codec`]: `data` is one H.264 access unit in AVCC form; `config` is an
/// `AVCDecoderConfigurationRecord` (avcC, ISO/IEC 14496-15 §5.3.3).
pub const CODEC_H264: u32 = 2;
/// [`MediaFrameRef::codec`]: `data` is one H.265 access unit in HVCC form; `config` is an
/// `HEVCDecoderConfigurationRecord` (hvcC, ISO/IEC 14496-15 §8.3.3).
pub const CODEC_H265: u32 = 3;

/// [`MediaFrameRef::flags`] bit: the frame can be decoded on its own (a JPEG, an H.264 IDR
/// or an H.265 IRAP access unit). A viewer joins a video stream at such a frame.
pub const MEDIA_KEYFRAME: u32 = 1;

/// Log levels for [`HostCallbacks::on_log`] (the host owns logging).
pub const LOG_ERROR: u32 = 1;
/// Warning.
pub const LOG_WARN: u32 = 2;
/// Informational.
pub const LOG_INFO: u32 = 3;
/// Debug.
pub const LOG_DEBUG: u32 = 4;

/// A borrowed UTF-8 string: pointer and length, no terminator.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StrRef<'a> {
    /// First byte; may be dangling when `len == 0`.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
    /// Ties the borrow to the Rust lifetime on whichever side builds it.
    pub _marker: PhantomData<&'a str>,
}

impl<'a> StrRef<'a> {
    /// Borrows a Rust string for one call.
    pub fn new(s: &'a str) -> Self {
        StrRef {
            ptr: s.as_ptr(),
            len: s.len(),
            _marker: PhantomData,
        }
    }

    /// Reads the string back, replacing invalid UTF-8 rather than trusting the other side.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that stay valid for `'a`.
    pub unsafe fn to_string_lossy(&self) -> String {
        if self.len == 0 || self.ptr.is_null() {
            return String::new();
        }
        // SAFETY: the caller guarantees `ptr..ptr+len` is readable for the call.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// A borrowed byte slice: pointer and length.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ByteSlice<'a> {
    /// First byte; may be dangling when `len == 0`.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
    /// Ties the borrow to the Rust lifetime on whichever side builds it.
    pub _marker: PhantomData<&'a [u8]>,
}

impl<'a> ByteSlice<'a> {
    /// Borrows a Rust slice for one call.
    pub fn new(b: &'a [u8]) -> Self {
        ByteSlice {
            ptr: b.as_ptr(),
            len: b.len(),
            _marker: PhantomData,
        }
    }

    /// Views the bytes.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that stay valid for `'a`.
    pub unsafe fn as_slice(&self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            return &[];
        }
        // SAFETY: the caller guarantees `ptr..ptr+len` is readable for `'a`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Where a callee writes a human-readable error. The writer may call `write` several times;
/// the texts are concatenated. The receiver copies the text during the call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ErrorSink {
    /// Opaque receiver state.
    pub ctx: *mut c_void,
    /// Appends text to the receiver's message.
    pub write: extern "C" fn(ctx: *mut c_void, text: StrRef<'_>),
}

/// One complete JPEG image handed to the host. Borrowed for the call: the host copies it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FrameRef<'a> {
    /// Size of this struct as the plugin built it.
    pub size: usize,
    /// The JPEG bytes, from SOI (FF D8) to EOI (FF D9).
    pub jpeg: ByteSlice<'a>,
    /// Picture width in pixels (0 if unknown).
    pub width: u32,
    /// Picture height in pixels (0 if unknown).
    pub height: u32,
    /// When the picture was captured, in microseconds since the Unix epoch (0 if unknown;
    /// the host then uses the time of arrival).
    pub capture_time_us: u64,
}

/// One encoded frame of any codec handed to the host (ABI v2). Borrowed for the call: the
/// host copies what it keeps.
///
/// - `CODEC_JPEG`: `data` is one whole JPEG, as in [`FrameRef`]; `config` is empty.
/// - `CODEC_H264` / `CODEC_H265`: `data` is exactly ONE access unit in AVCC/HVCC form —
///   each NAL unit prefixed by its length as a 4-byte big-endian integer, no start codes.
///   Parameter sets (SPS/PPS/VPS) may be left out of it: they travel in `config`.
///   `config` is the decoder configuration record (avcC for H.264, hvcC for H.265) with
///   `lengthSizeMinusOne = 3`. It is REQUIRED on the first video frame of an instance and
///   whenever it changes, and empty otherwise (empty = "unchanged"); the host refuses a
///   video frame before the first config.
/// - `flags`: [`MEDIA_KEYFRAME`] for frames that decode on their own (every JPEG, IDR/IRAP
///   access units). Other bits are reserved and must be 0.
/// - `width`/`height`: the coded picture size in pixels (0 if unknown).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MediaFrameRef<'a> {
    /// Size of this struct as the plugin built it.
    pub size: usize,
    /// `CODEC_*`.
    pub codec: u32,
    /// `MEDIA_*` bits.
    pub flags: u32,
    /// The encoded frame (see the struct's documentation).
    pub data: ByteSlice<'a>,
    /// The decoder configuration record for video; empty when unchanged (and for JPEG).
    pub config: ByteSlice<'a>,
    /// Picture width in pixels (0 if unknown).
    pub width: u32,
    /// Picture height in pixels (0 if unknown).
    pub height: u32,
    /// When the picture was captured, in microseconds since the Unix epoch (0 if unknown;
    /// the host then uses the time of arrival).
    pub capture_time_us: u64,
}

/// Functions the host gives each plugin instance. Valid from `create` until `stop` returns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HostCallbacks {
    /// Size of this struct as the host built it.
    pub size: usize,
    /// Opaque host state for this instance; passed back on every call. Thread-safe: the
    /// callbacks may be called from any plugin thread, concurrently. It is a token, not
    /// necessarily a pointer: the host keeps recognising it after `destroy`, so a plugin
    /// thread that calls late is refused (and counted), never served from freed memory.
    pub ctx: *mut c_void,
    /// Publishes one frame. Returns [`STATUS_OK`]; [`STATUS_CLOSED`] when the host no
    /// longer wants frames from this instance (final: stop producing); any other status
    /// (e.g. [`STATUS_ERROR`] for a failure inside the host, [`STATUS_ABI_MISMATCH`] for a
    /// `FrameRef` smaller than the host's) refuses this frame only.
    ///
    /// Concurrent calls for one instance are memory-safe (each frame is copied and
    /// published whole), but the host does not order them: when two threads publish at the
    /// same moment, viewers may keep the older of the two frames. Publish from one thread
    /// per instance when order matters.
    pub on_frame: extern "C" fn(ctx: *mut c_void, frame: *const FrameRef<'_>) -> i32,
    /// Reports a state change (`STATE_*`) with a human-readable message (may be empty).
    /// The message must not contain secrets (passwords, tokens).
    pub on_state: extern "C" fn(ctx: *mut c_void, state: u32, message: StrRef<'_>),
    /// Logs a line at a `LOG_*` level; the host adds the stream id and plugin name.
    pub on_log: extern "C" fn(ctx: *mut c_void, level: u32, message: StrRef<'_>),
    /// ABI v2: publishes one frame of any codec ([`MediaFrameRef`]). Same statuses and
    /// ordering rules as `on_frame`; in addition a frame the host finds malformed (unknown
    /// codec, a JPEG without its markers, bad AVCC length prefixes, a video frame before
    /// the first `config`...) is refused with [`STATUS_ERROR`] and logged by the host,
    /// rate-limited. A JPEG sent here takes exactly the path of `on_frame`.
    pub on_media: extern "C" fn(ctx: *mut c_void, frame: *const MediaFrameRef<'_>) -> i32,
    /// Optional (appended within v2; present when `size` covers it and it is not null):
    /// "the next frame I send follows `frames` frames that were skipped before they reached
    /// me" (a relay whose upstream numbered its frames with a gap). The host advances the
    /// sequence numbers of this instance's next frame (JPEG and video) by `frames`, so its
    /// viewers see the same gap. Returns [`STATUS_OK`], or [`STATUS_CLOSED`] when the host
    /// no longer wants anything from this instance.
    pub on_skip: Option<extern "C" fn(ctx: *mut c_void, frames: u64) -> i32>,
}

/// What a plugin exposes: metadata and its lifecycle functions. Filled in by the plugin's
/// entry function into memory the host owns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PluginVTable {
    /// Size of this struct as the plugin built it.
    pub size: usize,
    /// The ABI version the plugin was built for.
    pub abi_version: u32,
    /// Unique plugin name used in manifests (`source.plugin`), `'static` in the library.
    pub name: StrRef<'static>,
    /// The plugin's own version, `'static` in the library.
    pub version: StrRef<'static>,
    /// One line saying what the plugin does, `'static` in the library.
    pub description: StrRef<'static>,
    /// Checks a JSON configuration without creating anything.
    pub validate: extern "C" fn(config_json: StrRef<'_>, err: ErrorSink) -> i32,
    /// Creates an instance from a JSON configuration. On [`STATUS_OK`], `*out` holds an
    /// opaque instance pointer owned by the plugin until `destroy`.
    pub create: extern "C" fn(
        config_json: StrRef<'_>,
        host: *const HostCallbacks,
        out: *mut *mut c_void,
        err: ErrorSink,
    ) -> i32,
    /// Starts producing frames on the plugin's own threads. Returns promptly.
    pub start: extern "C" fn(instance: *mut c_void, err: ErrorSink) -> i32,
    /// Stops: blocking, idempotent, joins the plugin's threads. No host callback for this
    /// instance happens after it returns.
    pub stop: extern "C" fn(instance: *mut c_void, err: ErrorSink) -> i32,
    /// Frees the instance (after `stop`). The pointer is invalid afterwards.
    pub destroy: extern "C" fn(instance: *mut c_void),
}

/// Signature of [`ENTRY_SYMBOL`]: the handshake.
///
/// The host passes its ABI version and a zeroed [`PluginVTable`] buffer of `out_size` bytes.
/// The plugin refuses a version it was not built for, or a buffer smaller than its vtable,
/// with [`STATUS_ABI_MISMATCH`] and a message; otherwise it writes its whole vtable (and
/// nothing past it) and returns [`STATUS_OK`]. Returning OK without writing a complete
/// vtable is a plugin bug the host refuses cleanly (zero `size`, null functions).
pub type EntryFn = extern "C" fn(
    host_abi_version: u32,
    out: *mut PluginVTable,
    out_size: usize,
    err: ErrorSink,
) -> i32;

/// Signature of [`ABI_VERSION_SYMBOL`].
pub type AbiVersionFn = extern "C" fn() -> u32;
