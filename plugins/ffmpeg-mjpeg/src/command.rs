//! The ffmpeg command line: which binary, which flags, wrapped in `setpriv` for a
//! parent-death signal.
//!
//! Invariants: the input URL is always the argument right after `-i` and has been
//! validated (allowed scheme, cannot start with `-`); ffmpeg may open only network
//! protocols ([`PROTOCOL_WHITELIST`]), also for URLs it finds itself (HTTP redirects, HLS
//! playlists, SDP), so no `file:`, `pipe:`, `unix:`... behind a camera URL; ffmpeg never
//! reads stdin (`-nostdin`), never writes anything but MJPEG to stdout (`-f mjpeg
//! pipe:1`), drops audio (`-an`), and logs with level tags (`-loglevel level+info`) so the
//! stderr classifier can tell errors from chatter; ffmpeg's environment holds only
//! [`INHERITED_ENV`] (never the variables that carry camera passwords or gateway tokens).
//! [`FfmpegCommand`]'s `Debug` never shows the URL's credentials.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{Scale, Settings, mask_userinfo};

/// Where `setpriv` (util-linux) lives on Debian and most Linux distributions.
pub const SETPRIV: &str = "/usr/bin/setpriv";

/// `-protocol_whitelist`: the avio protocols ffmpeg may open for the input and everything
/// it opens on the input's behalf. RTSP needs `tcp` (and `udp`, `rtp` for UDP transport,
/// `tls` for rtsps, `http` for RTSP-over-HTTP); HTTP(S) cameras need `http`, `https`,
/// `tls`, `tcp`, `httpproxy` (with `http_proxy` set) and `crypto` (encrypted HLS). `rtsp`
/// itself is a demuxer, not a protocol, in ffmpeg 5.1 (`ffmpeg -protocols`).
pub const PROTOCOL_WHITELIST: &str = "tcp,udp,rtp,srtp,tls,http,https,httpproxy,crypto";

/// The only environment variables ffmpeg inherits from the gateway: what it needs to run
/// (`PATH`, `LD_LIBRARY_PATH`, locale, time zone), reach a camera through a proxy
/// (`http_proxy`, `no_proxy`: ffmpeg reads these lowercase names) and use a GPU (VA-API,
/// CUDA). Everything else — in particular the variables a manifest substitutes camera
/// passwords and tokens from — stays out of ffmpeg's `/proc/PID/environ`.
pub const INHERITED_ENV: [&str; 10] = [
    "PATH",
    "LD_LIBRARY_PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "http_proxy",
    "no_proxy",
    "LIBVA_DRIVER_NAME",
    "LIBVA_DRIVERS_PATH",
    "CUDA_VISIBLE_DEVICES",
];

/// The part of `vars` (the gateway's environment) that ffmpeg gets: [`INHERITED_ENV`].
pub fn child_environment(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    vars.into_iter()
        .filter(|(name, _)| INHERITED_ENV.iter().any(|allowed| name == allowed))
        .collect()
}

/// How ffmpeg produces the JPEGs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decode and re-encode (`-vf fps=..,scale=.. -q:v ..`).
    Transcode,
    /// Copy the camera's JPEGs (`-c:v copy`); the plugin enforces the frame rate.
    Copy,
}

/// How much of the input ffmpeg reads before it starts decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probing {
    /// `-probesize 32 -analyzeduration 0`: first JPEG about 1 s after spawn instead of
    /// 1.3-2 s (measured), enough when the camera sends SPS/PPS with its first packets.
    Fast,
    /// ffmpeg's defaults: for cameras whose first packets lack the parameters (common with
    /// H.265 or long GOPs), where fast probing finds a stream but never a frame.
    Default,
}

/// A ready-to-spawn command line.
#[derive(Clone)]
pub struct FfmpegCommand {
    /// The program to execute (`setpriv` or ffmpeg itself).
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Its whole environment (spawn with `env_clear()` first).
    pub env: Vec<(OsString, OsString)>,
}

impl FfmpegCommand {
    /// A [`Command`](std::process::Command) for this line with exactly `self.env` as its
    /// environment (stdio left to the caller).
    pub fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }
}

impl fmt::Debug for FfmpegCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.program.to_string_lossy())?;
        for arg in &self.args {
            write!(f, " {}", mask_userinfo(&arg.to_string_lossy()))?;
        }
        Ok(())
    }
}

/// Finds the ffmpeg binary: a value with a `/` is a path, anything else is looked up in
/// `PATH`. The error is the operator-facing message.
pub fn resolve_ffmpeg(configured: &str) -> Result<PathBuf, String> {
    let not_found = |looked: String| {
        format!("ffmpeg not found: looked for {looked}; install ffmpeg or set source.ffmpeg_path")
    };
    if configured.contains('/') {
        let path = Path::new(configured);
        return if is_executable(path) {
            Ok(path.to_path_buf())
        } else {
            Err(not_found(format!(
                "`{configured}` (no executable file there)"
            )))
        };
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(configured))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| not_found(format!("`{configured}` in PATH")))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `true` if `setpriv` can give ffmpeg a parent-death signal.
pub fn setpriv_available() -> bool {
    is_executable(Path::new(SETPRIV))
}

/// Builds the command for `settings` in `mode` with `probing`. With `setpriv` true the
/// command is `setpriv --pdeathsig KILL -- ffmpeg ...` (setpriv execs ffmpeg, so the pid
/// is ffmpeg's).
pub fn build(
    settings: &Settings,
    ffmpeg: &Path,
    mode: Mode,
    probing: Probing,
    setpriv: bool,
) -> FfmpegCommand {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
    push(&[
        "-nostdin",
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "level+info",
    ]);
    if mode == Mode::Transcode
        && let Some(hwaccel) = &settings.hwaccel
    {
        push(&["-hwaccel", hwaccel]);
    }
    // Low-latency input: no input buffering and, unless this camera needs more, minimal
    // probing (measured: first JPEG ~1 s after spawn instead of 1.3-2 s).
    push(&["-fflags", "nobuffer", "-flags", "low_delay"]);
    if probing == Probing::Fast {
        push(&["-probesize", "32", "-analyzeduration", "0"]);
    }
    if settings.is_rtsp() {
        push(&["-rtsp_transport", settings.transport.as_str()]);
    }
    // Socket timeout in microseconds: bounds connect and handshake (not a mid-stream stall:
    // the supervisor's watchdog handles that).
    let timeout = settings.connect_timeout.as_micros().to_string();
    push(&["-timeout", &timeout]);
    push(&["-protocol_whitelist", PROTOCOL_WHITELIST]);
    push(&["-i", &settings.input_url, "-an"]);
    match mode {
        Mode::Copy => push(&["-c:v", "copy"]),
        Mode::Transcode => {
            let quality = settings.quality.to_string();
            push(&["-vf", &filter(settings), "-q:v", &quality]);
        }
    }
    push(&["-f", "mjpeg", "pipe:1"]);
    if setpriv {
        let mut wrapped: Vec<OsString> = ["--pdeathsig", "KILL", "--"]
            .iter()
            .map(OsString::from)
            .collect();
        wrapped.push(ffmpeg.as_os_str().to_owned());
        wrapped.extend(args);
        FfmpegCommand {
            program: SETPRIV.into(),
            args: wrapped,
            env: child_environment(std::env::vars_os()),
        }
    } else {
        FfmpegCommand {
            program: ffmpeg.as_os_str().to_owned(),
            args,
            env: child_environment(std::env::vars_os()),
        }
    }
}

/// The `-vf` chain: rate first (so fewer frames are scaled), then size.
fn filter(settings: &Settings) -> String {
    let fps = format_fps(settings.fps);
    match settings.scale {
        Scale::Native => format!("fps={fps}"),
        Scale::Width(w) => format!("fps={fps},scale={w}:-2"),
        Scale::Height(h) => format!("fps={fps},scale=-2:{h}"),
        Scale::Exact(w, h) => format!("fps={fps},scale={w}:{h}"),
    }
}

/// `10` for 10.0, `2.5` for 2.5 (ffmpeg accepts both, and integers read better in logs).
fn format_fps(fps: f64) -> String {
    if fps.fract() == 0.0 {
        format!("{fps:.0}")
    } else {
        format!("{fps}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FfmpegMjpegConfig;

    fn settings(json: &str) -> Settings {
        let config: FfmpegMjpegConfig = serde_json::from_str(json).unwrap();
        Settings::from_config(&config).unwrap()
    }

    /// The command line for `s` with the default binary and no hardware fallback.
    fn command_line(s: &Settings, mode: Mode, probing: Probing) -> String {
        line(&build(s, Path::new("ffmpeg"), mode, probing, false))
    }

    fn line(cmd: &FfmpegCommand) -> String {
        let mut parts = vec![cmd.program.to_string_lossy().into_owned()];
        parts.extend(cmd.args.iter().map(|a| a.to_string_lossy().into_owned()));
        parts.join(" ")
    }

    #[test]
    fn transcode_command_has_every_flag_in_order() {
        let s = settings(
            r#"{"url": "rtsp://u:p@127.0.0.1:8554/test", "fps": 5, "width": 320,
                "quality": 7, "connect_timeout": "2s", "hwaccel": "auto"}"#,
        );
        let cmd = build(
            &s,
            Path::new("/usr/bin/ffmpeg"),
            Mode::Transcode,
            Probing::Fast,
            true,
        );
        assert_eq!(
            line(&cmd),
            "/usr/bin/setpriv --pdeathsig KILL -- /usr/bin/ffmpeg -nostdin -hide_banner \
             -nostats -loglevel level+info -hwaccel auto -fflags nobuffer -flags low_delay \
             -probesize 32 -analyzeduration 0 -rtsp_transport tcp -timeout 2000000 \
             -protocol_whitelist tcp,udp,rtp,srtp,tls,http,https,httpproxy,crypto \
             -i rtsp://u:p@127.0.0.1:8554/test -an -vf fps=5,scale=320:-2 -q:v 7 \
             -f mjpeg pipe:1"
        );
        assert!(!format!("{cmd:?}").contains("u:p@"), "{cmd:?}");
    }

    #[test]
    fn copy_mode_and_other_variants() {
        let s =
            settings(r#"{"url": "http://cam/video.mjpg", "transport": "udp", "hwaccel": "auto"}"#);
        let text = command_line(&s, Mode::Copy, Probing::Fast);
        assert!(text.starts_with("ffmpeg -nostdin"), "{text}");
        assert!(text.contains("-an -c:v copy -f mjpeg pipe:1"), "{text}");
        assert!(!text.contains("-rtsp_transport"), "{text}");
        assert!(!text.contains("-hwaccel"), "copy does not decode: {text}");
        let s = settings(r#"{"url": "rtsp://c/x", "transport": "udp", "height": 240, "fps": 2.5}"#);
        let text = command_line(&s, Mode::Transcode, Probing::Fast);
        assert!(text.contains("-rtsp_transport udp"), "{text}");
        assert!(text.contains("-vf fps=2.5,scale=-2:240"), "{text}");
        let s = settings(r#"{"url": "rtsp://c/x", "width": 320, "height": 240}"#);
        let text = command_line(&s, Mode::Transcode, Probing::Fast);
        assert!(text.contains("-vf fps=10,scale=320:240 -q:v 5"), "{text}");
        let text = command_line(&s, Mode::Transcode, Probing::Default);
        assert!(
            text.contains("-flags low_delay -rtsp_transport tcp"),
            "{text}"
        );
        assert!(
            !text.contains("-probesize") && !text.contains("-analyzeduration"),
            "{text}"
        );
    }

    #[test]
    fn ffmpeg_gets_only_the_allowed_environment() {
        let gateway_env = [
            ("PATH", "/usr/bin"),
            ("LOBBY_PASSWORD", "s3cret"),
            ("CAMGATE_ADMIN_TOKEN", "t0ken"),
            ("http_proxy", "http://proxy:3128"),
            ("HTTP_PROXY_PASSWORD", "x"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let names: Vec<String> = child_environment(gateway_env)
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["PATH", "http_proxy"]);
        // The command carries it, and `command()` clears everything else.
        let s = settings(r#"{"url": "rtsp://c/x"}"#);
        let cmd = build(
            &s,
            Path::new("ffmpeg"),
            Mode::Transcode,
            Probing::Fast,
            false,
        );
        assert!(
            cmd.env
                .iter()
                .all(|(k, _)| INHERITED_ENV.iter().any(|allowed| k == allowed))
        );
        let spawnable = cmd.command();
        let envs: Vec<_> = spawnable.get_envs().collect();
        assert_eq!(envs.len(), cmd.env.len());
    }

    #[test]
    fn missing_ffmpeg_names_the_option() {
        let err = resolve_ffmpeg("/nonexistent/ffmpeg").unwrap_err();
        assert_eq!(
            err,
            "ffmpeg not found: looked for `/nonexistent/ffmpeg` (no executable file there); \
             install ffmpeg or set source.ffmpeg_path"
        );
        let err = resolve_ffmpeg("no-such-ffmpeg-binary").unwrap_err();
        assert!(err.contains("`no-such-ffmpeg-binary` in PATH"), "{err}");
        assert!(resolve_ffmpeg("sh").is_ok());
    }
}
