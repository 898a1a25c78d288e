//! The plugin ABI, version 1, as a plugin built against it sees it.
//!
//! FROZEN: copied from `plugin-api/src/abi.rs` at commit 94089f7 (the last commit of ABI
//! v1), reduced to the items this fixture uses, with their layouts unchanged. It must never
//! change: it stands for the v1 plugin libraries already out there, which the gateway
//! promises to keep loading. If the gateway stops loading this fixture, the gateway broke
//! that promise — fix the gateway, not this file.

#![allow(dead_code)]

use std::ffi::c_void;
use std::marker::PhantomData;

pub const ABI_VERSION: u32 = 1;

pub const STATUS_OK: i32 = 0;
pub const STATUS_ERROR: i32 = 1;
pub const STATUS_INVALID_CONFIG: i32 = 2;
pub const STATUS_PANIC: i32 = 3;
pub const STATUS_ABI_MISMATCH: i32 = 4;
pub const STATUS_CLOSED: i32 = 5;

pub const STATE_CONNECTING: u32 = 1;
pub const STATE_LIVE: u32 = 2;
pub const STATE_RETRYING: u32 = 3;
pub const STATE_FAILED: u32 = 4;

pub const LOG_ERROR: u32 = 1;
pub const LOG_WARN: u32 = 2;
pub const LOG_INFO: u32 = 3;
pub const LOG_DEBUG: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StrRef<'a> {
    pub ptr: *const u8,
    pub len: usize,
    pub _marker: PhantomData<&'a str>,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ByteSlice<'a> {
    pub ptr: *const u8,
    pub len: usize,
    pub _marker: PhantomData<&'a [u8]>,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ErrorSink {
    pub ctx: *mut c_void,
    pub write: extern "C" fn(ctx: *mut c_void, text: StrRef<'_>),
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct FrameRef<'a> {
    pub size: usize,
    pub jpeg: ByteSlice<'a>,
    pub width: u32,
    pub height: u32,
    pub capture_time_us: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct HostCallbacks {
    pub size: usize,
    pub ctx: *mut c_void,
    pub on_frame: extern "C" fn(ctx: *mut c_void, frame: *const FrameRef<'_>) -> i32,
    pub on_state: extern "C" fn(ctx: *mut c_void, state: u32, message: StrRef<'_>),
    pub on_log: extern "C" fn(ctx: *mut c_void, level: u32, message: StrRef<'_>),
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct PluginVTable {
    pub size: usize,
    pub abi_version: u32,
    pub name: StrRef<'static>,
    pub version: StrRef<'static>,
    pub description: StrRef<'static>,
    pub validate: extern "C" fn(config_json: StrRef<'_>, err: ErrorSink) -> i32,
    pub create: extern "C" fn(
        config_json: StrRef<'_>,
        host: *const HostCallbacks,
        out: *mut *mut c_void,
        err: ErrorSink,
    ) -> i32,
    pub start: extern "C" fn(instance: *mut c_void, err: ErrorSink) -> i32,
    pub stop: extern "C" fn(instance: *mut c_void, err: ErrorSink) -> i32,
    pub destroy: extern "C" fn(instance: *mut c_void),
}
