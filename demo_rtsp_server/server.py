#!/usr/bin/python3
"""Camgate demo RTSP camera: a real, local, multi-client RTSP server.

What it is for
--------------
Demos of Camgate and the project's test suite need a camera that behaves like a
real one: RTSP over TCP or UDP, H.264 with periodic key frames, an MJPEG variant,
optional Basic auth, and several viewers at once. This script serves that with
GStreamer's RTSP server (Debian packages, see install-deps.sh) and needs no
camera, network or video file.

Mounts
------
  /test   live H.264 test pattern with a running wall clock (clockoverlay) and a
          stream clock with milliseconds (timeoverlay); WIDTHxHEIGHT at FPS,
          GOP = 1 s, x264 zerolatency, no B-frames, SPS/PPS in-band before
          every IDR (and in the SDP).
  /h265   the same live pattern as H.265 (x265 zerolatency, no B-frames, GOP =
          1 s, closed GOPs: every key frame is an IDR with VPS/SPS/PPS in-band
          before it, and in the SDP).
  /mjpeg  the same pattern as RTP/JPEG (RFC 2435), for `ffmpeg -c copy`.
  /loop264, /loop265
          a 10 s (--loop-seconds) clip of the pattern (H.264 / H.265,
          encoded like /test and /h265, running stream time at the bottom
          left) looped forever, served with NO encoding: the clip is encoded once into a cache file
          (see "Loop clips") and each client session costs only parsing and
          RTP payloading. RTP timestamps and sequence numbers run on across
          the loop (one continuous stream: the parser never sees the end).
          For benchmarks that run many cameras.
  /file   only with --file PATH: that file decoded, letterboxed to
          WIDTHxHEIGHT, re-encoded like /test, looped forever.

Picture-health mounts (cameras that are online but not working, for tests
of the gateway's frozen/dark detection; H.264 encoded like /test, at
WIDTHxHEIGHT and FPS, behind the same auth):
  /frozen?live=S&frozen=S
          a moving picture (smpte75 scrolling left, wall clock, stream
          time) for `live` seconds (default 10), then the SAME picture for
          `frozen` seconds (default 20): frames keep coming at FPS, but every
          raw frame is byte-identical (the scroll stops, back at its start
          position, the clocks disappear), and so on in a loop.
  /dark?live=S&dark=S
          the same moving picture for `live` s (default 10), then uniform
          black (luma 16, no overlay) for `dark` s (default 20), looped.
  /still  a static scene with sensor noise: smpte75 with `snow` blended
          over it at alpha 0.04 (grains of about 4x4 pixels, a few luma
          levels), no clock. Every frame differs a little from the one
          before, everywhere, but nothing moves: it must never count as
          frozen.
  The phases are counted in frames from the pipeline's first frame (the
  first client of that URL), so they are exact in stream time. S is a whole
  number of seconds, 1 to 86400; other keys are ignored (`cam=2` still makes
  another camera). A bad value is logged ("rejected: ...") and the DESCRIBE
  answered 400 Bad Request (after the password check, with --username).
  (smpte75, not smpte: smpte's corner of snow never freezes.)

Guarantees
----------
* One shared pipeline per mount, however many clients: a late joiner never
  restarts or seeks the stream under the others (media is published with
  CLOCK_AND_OFFSET, which makes it non-seekable). The pipeline starts with the
  first client and stops after the last one leaves.
* Binds only the address given by --host (127.0.0.1 by default): the RTSP
  listener and every RTP/RTCP UDP socket (a unicast address pool on that
  address). With --host 0.0.0.0 / :: UDP sockets bind the wildcard too.
* Prints exactly one line to stdout, `READY rtsp://HOST:PORT`, flushed, once
  the listening socket accepts connections (with --port 0 it carries the port
  the kernel chose; for a wildcard --host it names loopback). Everything else
  goes to stderr, and only a few lines unless --verbose.
* SIGTERM / SIGINT: exits with status 0 within a fraction of a second; client
  connections are closed by the exit.
* On Linux the process gets SIGTERM when its parent dies (PR_SET_PDEATHSIG),
  so a crashed test harness never leaves it running. Note the kernel's rule:
  "parent" is the *thread* that spawned it; disable with --no-die-with-parent
  if you spawn it from a short-lived thread.
* With --username/--password every mount requires RTSP Basic auth; a missing
  or wrong password gets `401 Unauthorized`.

* With --stats-file PATH it keeps PATH up to date with the number of RTSP
  sessions and pipelines per mount (see "Session counts"); the file exists
  with all counts 0 before the READY line.

Loop clips
----------
At start-up, before READY, the server makes sure both loop clips exist in the
cache directory (--cache-dir, default $XDG_CACHE_HOME/camgate-demo or
~/.cache/camgate-demo). A clip is an Annex-B elementary stream named after
everything that shapes it (codec, size, fps, bitrate, pattern, length), so a
second start with the same flags reuses it (a stat, no encoding); a missing
one is encoded once (flock-serialised, written to a temporary file and renamed,
so parallel starts never see half a clip; the empty `.lock` files stay).
Cost of the first start: about 1 s (H.264) + 5 s (H.265) at 1280x720 25 fps,
under 1 s for both at 640x360 15 fps, on the 2-core test machine.

Served as `multifilesrc loop=true ! h26Xparse ! rtph26Xpay`: the parser sees
one endless byte stream and numbers frames continuously from the frame rate
(a pad probe copies its DTS to PTS: no B-frames, so they are equal).

Measured on the 2-core test machine (1280x720 25 fps, 2 Mbit/s; server CPU
over 30 s, `ffmpeg -rtsp_transport tcp -i URL -c copy -f null -` clients):
  one client of /test (live x264)          13 % of one core
  one client of /h265 (live x265)          52 %
  one client of /loop264 or /loop265       1.4 %
  16 clients of /test (one shared encoder) 14 %
  16 clients of /loop264 (one pipeline)    2.9 %
  16 cameras /loop264?cam=1..16 (16 pipelines)  15 % (0.9 % each)
  16 cameras /loop265?cam=1..16 (16 pipelines)  11 % (0.7 % each)
  one client of /frozen (default phases)   10 % (17 % moving, 8 % frozen)
  one client of /dark (default phases)     10 % (7 % dark)
  one client of /still (x264 of noise)     23 %
  no client                                0 %
(a busy machine, load 3 to 9: the figures are CPU time, not wall time.)

Session counts
--------------
--stats-file PATH: the server rewrites PATH atomically (temporary file +
rename, so a reader never sees a partial file) on every change, as one JSON
object with one key per mount:

  {"sessions": {"/test": 1, "/h265": 0, ...},
   "total_sessions_opened": {"/test": 3, "/h265": 0, ...},
   "pipelines": {"/test": 1, "/h265": 0, ...},
   "sessions_by_url": {"/test": 1, "/loop264?cam=2": 1}}

sessions               RTSP sessions alive now: +1 at a client's first SETUP of
                       the mount, -1 at its TEARDOWN, when its connection
                       closes, or when it times out.
total_sessions_opened  sessions ever opened on the mount.
pipelines              running media pipelines of the mount (shared: 1 however
                       many sessions; 0 once the last client has gone).
sessions_by_url        sessions alive now per mount + query string (only the
                       ones with sessions); see "Independent cameras".

Independent cameras
-------------------
The pipeline of a mount is shared per URL *including its query string*:
/loop264?cam=1 and /loop264?cam=2 are two independent pipelines (their own
timing, their own RTP streams) serving the same picture, while every client
of /loop264?cam=1 shares one. Any query works, on every mount; the counts
above add them up under the mount. A benchmark can thus point 16 cameras at
/loop264?cam=1 ... /loop264?cam=16 of one server.

Run it with Debian's /usr/bin/python3 (the `gi` module comes from python3-gi).
"""

import argparse
import ctypes
import fcntl
import ipaddress
import itertools
import json
import os
import re
import signal
import sys
import threading
import urllib.parse

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer
except (ImportError, ValueError) as exc:  # pragma: no cover - environment check
    sys.stderr.write(
        "demo_rtsp_server: GStreamer Python bindings not found (%s).\n"
        "Run demo_rtsp_server/install-deps.sh and start the server with "
        "/usr/bin/python3 (Debian's Python, which has the `gi` module).\n" % exc
    )
    sys.exit(1)

PR_SET_PDEATHSIG = 1
ROLE = "camgate-demo-viewer"

# Elements each mount needs, checked at start-up so a missing Debian package is
# reported by name instead of as an opaque 503 to the first client.
REQUIRED_ELEMENTS = {
    "videotestsrc": "gstreamer1.0-plugins-base",
    "videoconvert": "gstreamer1.0-plugins-base",
    "clockoverlay": "gstreamer1.0-x",
    "timeoverlay": "gstreamer1.0-x",
    "textoverlay": "gstreamer1.0-x",
    "x264enc": "gstreamer1.0-plugins-ugly",
    "rtph264pay": "gstreamer1.0-plugins-good",
    "x265enc": "gstreamer1.0-plugins-bad",
    "rtph265pay": "gstreamer1.0-plugins-good",
    "multifilesrc": "gstreamer1.0-plugins-good",
    "h264parse": "gstreamer1.0-plugins-bad",
    "h265parse": "gstreamer1.0-plugins-bad",
    "filesink": "gstreamer1.0 (core)",
    "jpegenc": "gstreamer1.0-plugins-good",
    "rtpjpegpay": "gstreamer1.0-plugins-good",
    "compositor": "gstreamer1.0-plugins-base",
    "videoscale": "gstreamer1.0-plugins-base",
}
FILE_ELEMENTS = {
    "filesrc": "gstreamer1.0 (core)",
    "decodebin": "gstreamer1.0-plugins-base",
    "videorate": "gstreamer1.0-plugins-base",
    "intervideosink": "gstreamer1.0-plugins-bad",
    "intervideosrc": "gstreamer1.0-plugins-bad",
}


def log(msg):
    sys.stderr.write("demo_rtsp_server: %s\n" % msg)
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def even_dimension(text):
    value = positive_int(text)
    if value % 2 or value < 16 or value > 4096:
        raise argparse.ArgumentTypeError("must be even and between 16 and 4096")
    return value


def port_number(text):
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0..65535")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="server.py",
        description=(
            "Local RTSP camera for Camgate demos and tests. Serves\n"
            "  /test     H.264 test pattern with a running clock,\n"
            "  /h265     the same as H.265,\n"
            "  /mjpeg    the same pattern as MJPEG (RTP/JPEG),\n"
            "  /loop264  a cached 10 s H.264 clip, looped without encoding,\n"
            "  /loop265  the same in H.265,\n"
            "  /file     with --file: a video file, looped forever.\n"
            "Cameras that are online but broken, to test picture health:\n"
            "  /frozen?live=10&frozen=20  moving, then the same picture, looped,\n"
            "  /dark?live=10&dark=20      moving, then black, looped,\n"
            "  /still    a static scene with sensor noise (never frozen).\n"
            "One shared pipeline per mount for any number of clients.\n"
            "Prints 'READY rtsp://HOST:PORT' on stdout once listening.\n"
            "Stop it with Ctrl-C or SIGTERM (exit status 0)."
        ),
        epilog=(
            "examples:\n"
            "  demo_rtsp_server/server.py\n"
            "  demo_rtsp_server/server.py --port 0            # kernel picks a free port\n"
            "  demo_rtsp_server/server.py --width 640 --height 360 --fps 10\n"
            "  demo_rtsp_server/server.py --username admin --password secret\n"
            "  demo_rtsp_server/server.py --file clip.mp4\n"
            "  ffplay 'rtsp://127.0.0.1:8554/frozen?live=5&frozen=10'\n"
            "  demo_rtsp_server/server.py --port 0 --stats-file /tmp/sessions.json\n"
            "  ffmpeg -rtsp_transport tcp -i rtsp://127.0.0.1:8554/test -frames:v 1 x.jpg"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    net = parser.add_argument_group("network")
    net.add_argument(
        "--host",
        default="127.0.0.1",
        help="IP address to listen on; RTP/UDP sockets bind it too "
        "(default: %(default)s; use 0.0.0.0 inside a container)",
    )
    net.add_argument(
        "--port",
        type=port_number,
        default=8554,
        help="RTSP TCP port (default: %(default)s); 0 lets the kernel pick a "
        "free port, reported on the READY line",
    )
    net.add_argument(
        "--tcp-only",
        action="store_true",
        help="offer only RTP-over-RTSP (interleaved TCP); UDP SETUPs get 461 "
        "and ffmpeg falls back to TCP by itself",
    )
    net.add_argument(
        "--udp-ports",
        default="40000-59999",
        metavar="MIN-MAX",
        help="port range for RTP/RTCP UDP sockets (default: %(default)s)",
    )

    video = parser.add_argument_group("video")
    video.add_argument("--width", type=even_dimension, default=1280, help="default: %(default)s")
    video.add_argument("--height", type=even_dimension, default=720, help="default: %(default)s")
    video.add_argument(
        "--fps", type=positive_int, default=25, help="frame rate of every mount but "
        "/mjpeg; the GOP is one second (default: %(default)s)"
    )
    video.add_argument(
        "--mjpeg-fps",
        type=positive_int,
        default=None,
        help="frame rate of /mjpeg (default: same as --fps)",
    )
    video.add_argument(
        "--bitrate",
        type=positive_int,
        default=2048,
        help="H.264/H.265 bitrate in kbit/s (default: %(default)s)",
    )
    video.add_argument(
        "--pattern",
        default="smpte",
        help="videotestsrc pattern, e.g. smpte, ball, snow, bar (default: "
        "%(default)s); not for /frozen, /dark, /still, which draw smpte75",
    )
    video.add_argument(
        "--file",
        metavar="PATH",
        help="also serve /file: this video file, decoded, scaled to "
        "WIDTHxHEIGHT, re-encoded to H.264 and looped forever",
    )

    auth = parser.add_argument_group(
        "authentication (both or neither; the environment variables keep the "
        "password out of `ps`)"
    )
    auth.add_argument(
        "--username",
        default=os.environ.get("DEMO_RTSP_USERNAME") or None,
        help="require RTSP Basic auth with this user name (env: DEMO_RTSP_USERNAME)",
    )
    auth.add_argument(
        "--password",
        default=os.environ.get("DEMO_RTSP_PASSWORD") or None,
        help="... and this password (env: DEMO_RTSP_PASSWORD)",
    )

    video.add_argument(
        "--loop-seconds",
        type=positive_int,
        default=10,
        help="length of the /loop264 and /loop265 clips, a whole number of "
        "1 s GOPs (default: %(default)s)",
    )
    video.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=None,
        help="where the /loop264 and /loop265 clips are kept (default: "
        "$XDG_CACHE_HOME/camgate-demo or ~/.cache/camgate-demo)",
    )

    misc = parser.add_argument_group("process")
    misc.add_argument(
        "--stats-file",
        metavar="PATH",
        default=None,
        help="keep PATH up to date (atomically) with the RTSP sessions and "
        "pipelines per mount, as JSON (see the module docstring)",
    )
    misc.add_argument(
        "--no-die-with-parent",
        dest="die_with_parent",
        action="store_false",
        help="do not ask the kernel to SIGTERM us when the spawning thread exits",
    )
    misc.add_argument(
        "-v", "--verbose", action="store_true", help="log client connections to stderr"
    )

    args = parser.parse_args(argv)
    if (args.username is None) != (args.password is None):
        parser.error("--username and --password must be given together")
    if args.username is not None and (not args.username or ":" in args.username):
        parser.error("--username must be non-empty and must not contain ':'")
    if args.mjpeg_fps is None:
        args.mjpeg_fps = args.fps
    if not re.fullmatch(r"[a-z0-9-]+", args.pattern):
        parser.error("--pattern must be a videotestsrc pattern name such as smpte")
    try:
        args.host_ip = ipaddress.ip_address(args.host)
    except ValueError:
        parser.error("--host must be an IP address such as 127.0.0.1, 0.0.0.0 or ::1")
    match = re.fullmatch(r"(\d+)-(\d+)", args.udp_ports)
    if not match:
        parser.error("--udp-ports must look like 40000-59999")
    args.udp_min, args.udp_max = int(match.group(1)), int(match.group(2))
    if not 1024 <= args.udp_min < args.udp_max <= 65535:
        parser.error("--udp-ports must be an increasing range within 1024-65535")
    if args.file is not None:
        args.file = os.path.abspath(args.file)
        if not os.path.isfile(args.file) or not os.access(args.file, os.R_OK):
            parser.error("--file %s: not a readable file" % args.file)
    if args.cache_dir is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache"
        )
        args.cache_dir = os.path.join(base, "camgate-demo")
    args.cache_dir = os.path.abspath(args.cache_dir)
    if args.stats_file is not None:
        args.stats_file = os.path.abspath(args.stats_file)
        if not os.path.isdir(os.path.dirname(args.stats_file)):
            parser.error("--stats-file %s: no such directory" % args.stats_file)
    return args


# --------------------------------------------------------------------------
# Pipelines
# --------------------------------------------------------------------------


def overlays(args, label):
    """clockoverlay (wall clock, top right) + timeoverlay (stream time, ms)."""
    size = max(6, args.height // 40)
    return (
        "clockoverlay name=clock text=\"{label}\" time-format=\"%Y-%m-%d %H:%M:%S\" "
        "halignment=right valignment=top shaded-background=true "
        "font-desc=\"Sans {size}\" ! "
        "timeoverlay name=time halignment=left valignment=bottom shaded-background=true "
        "font-desc=\"Sans {size}\" ! "
    ).format(label=label, size=size)


def h264_encoder(args):
    """Raw video in, H.264 byte stream out: /test, /file and the /loop264 clip.

    SPS/PPS go in-band before every IDR, inside the IDR's access unit: x264
    repeats them in byte-stream mode and rtph264pay passes them through. Do NOT
    use rtph264pay config-interval=-1 instead: in GStreamer 1.22 the inserted
    SPS/PPS end with the RTP marker bit, so ffmpeg sees an extra empty "frame"
    at every key frame (duplicate DTS, "concealing ... errors in I frame").
    """
    return (
        "videoconvert ! video/x-raw,format=I420 ! "
        "x264enc tune=zerolatency speed-preset=ultrafast bframes=0 "
        "key-int-max={fps} bitrate={bitrate} ! "
        "video/x-h264,stream-format=byte-stream,profile=constrained-baseline"
    ).format(fps=args.fps, bitrate=args.bitrate)


def h265_encoder(args):
    """Raw video in, H.265 byte stream out: /h265 and the /loop265 clip.

    Same rules as H.264: zerolatency (no B-frames, no lookahead, no scene-cut
    key frames, so the GOP is exactly --fps frames), closed GOPs (every key
    frame an IDR, not x265's default CRA), and VPS/SPS/PPS repeated in-band by
    the encoder before every IDR (repeat-headers), so the payloader runs with
    config-interval=0 and nothing is sent twice. (rtph265pay config-interval=-1
    without repeat-headers gives the same stream and, unlike rtph264pay, no
    stray marker bit in 1.22; the encoder's copy also makes the /loop265 file
    decodable from any GOP.)
    """
    return (
        "videoconvert ! video/x-raw,format=I420 ! "
        "x265enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
        "bitrate={bitrate} option-string=\"bframes=0:open-gop=0:repeat-headers=1\" ! "
        "video/x-h265,stream-format=byte-stream,profile=main"
    ).format(fps=args.fps, bitrate=args.bitrate)


PAYLOADERS = {
    "h264": "rtph264pay name=pay0 pt=96 config-interval=0",
    "h265": "rtph265pay name=pay0 pt=96 config-interval=0",
}


def h264_tail(args):
    """Encoder and payloader shared by /test and /file."""
    return "%s ! %s" % (h264_encoder(args), PAYLOADERS["h264"])


def raw_caps(args, fps):
    return "video/x-raw,width={w},height={h},framerate={fps}/1,pixel-aspect-ratio=1/1".format(
        w=args.width, h=args.height, fps=fps
    )


def test_launch(args):
    return "( videotestsrc is-live=true pattern={p} ! {caps} ! {ov}{tail} )".format(
        p=args.pattern, caps=raw_caps(args, args.fps), ov=overlays(args, "/test"),
        tail=h264_tail(args),
    )


def h265_launch(args):
    return "( videotestsrc is-live=true pattern={p} ! {caps} ! {ov}{enc} ! {pay} )".format(
        p=args.pattern, caps=raw_caps(args, args.fps), ov=overlays(args, "/h265"),
        enc=h265_encoder(args), pay=PAYLOADERS["h265"],
    )


def mjpeg_launch(args):
    return (
        "( videotestsrc is-live=true pattern={p} ! {caps} ! {ov}"
        "videoconvert ! video/x-raw,format=I420 ! jpegenc quality=85 ! "
        "rtpjpegpay name=pay0 pt=26 )"
    ).format(p=args.pattern, caps=raw_caps(args, args.mjpeg_fps),
             ov=overlays(args, "/mjpeg"))


def file_launch(args):
    # intervideosrc is a live source that repeats the last frame it got from the
    # file player (and shows black until the first one): the RTSP side never
    # sees the loop, so its timestamps stay continuous.
    return "( intervideosrc name=src timeout=5000000000 ! {caps} ! {tail} )".format(
        caps=raw_caps(args, args.fps), tail=h264_tail(args)
    )


# --------------------------------------------------------------------------
# Picture-health mounts: /frozen, /dark, /still
# --------------------------------------------------------------------------

# Each phase mount's query keys and their defaults, in seconds: the first
# phase shows the moving picture, the second the broken one.
PHASE_KEYS = {
    "/frozen": (("live", 10), ("frozen", 20)),
    "/dark": (("live", 10), ("dark", 20)),
}
MAX_PHASE_SECONDS = 86400  # one day: keeps frame counts and timers sane


class QueryError(ValueError):
    """A phase mount's query string asks for something it cannot do."""


def phase_seconds(mount, query):
    """(moving, broken) phase lengths in seconds from a /frozen or /dark query.

    Keys the mount does not know are ignored (any query, e.g. `cam=2`, makes
    an independent camera); a known key must be given once, as a whole number
    of seconds from 1 to MAX_PHASE_SECONDS.
    """
    (live_key, live), (broken_key, broken) = PHASE_KEYS[mount]
    values = {live_key: live, broken_key: broken}
    seen = set()
    for key, value in urllib.parse.parse_qsl(query or "", keep_blank_values=True):
        if key not in values:
            continue
        if key in seen:
            raise QueryError("%s: %s= given twice" % (mount, key))
        seen.add(key)
        if not re.fullmatch(r"[0-9]{1,6}", value) or not 1 <= int(value) <= MAX_PHASE_SECONDS:
            raise QueryError(
                "%s: %s=%r is not a whole number of seconds from 1 to %d"
                % (mount, key, value[:40], MAX_PHASE_SECONDS)
            )
        values[key] = int(value)
    return values[live_key], values[broken_key]


def scroll_speed(args):
    """Pixels per frame for the moving phase: the picture crosses in ~4 s."""
    return max(2, args.width // (4 * args.fps))


def label_overlay(label, args):
    """A static label, top left (it never changes, so it never moves)."""
    return (
        "textoverlay name=label text=\"{label}\" halignment=left valignment=top "
        "shaded-background=true font-desc=\"Sans {size}\" ! "
    ).format(label=label, size=max(6, args.height // 40))


def phase_launch(args, mount):
    """/frozen, /dark: smpte75 (no noise patch, unlike smpte) scrolling left,
    wall clock and stream time, then the broken picture; PhaseSwitch flips it."""
    return "( videotestsrc name=src is-live=true pattern=smpte75 horizontal-speed={speed} " \
        "! {caps} ! {label}{ov}{tail} )".format(
            speed=scroll_speed(args), caps=raw_caps(args, args.fps),
            label=label_overlay(mount, args), ov=overlays(args, ""), tail=h264_tail(args),
        )


# Noise of /still: `snow` at a quarter of the size, enlarged to grains of
# 4x4 pixels (which the encoder keeps and which survive downscaling, unlike
# per-pixel noise) and blended over the picture at this alpha: about
# +-STILL_NOISE_ALPHA*128 luma levels. All in I420: letting the compositor
# pick its format (AYUV) and scale costs 4x the CPU.
STILL_NOISE_ALPHA = 0.04


def still_launch(args):
    """/still: a static smpte75 picture with temporal noise blended over it."""
    caps = raw_caps(args, args.fps) + ",format=I420"
    return (
        "( compositor name=mix background=black sink_1::alpha={alpha} "
        "! {caps} ! {label}{tail} "
        "videotestsrc is-live=true pattern=smpte75 ! {caps} ! mix.sink_0 "
        "videotestsrc is-live=true pattern=snow ! "
        "video/x-raw,format=I420,width={nw},height={nh},framerate={fps}/1 ! "
        "videoscale method=nearest-neighbour ! {caps} ! mix.sink_1 )"
    ).format(
        alpha=STILL_NOISE_ALPHA, caps=caps, label=label_overlay("/still", args),
        tail=h264_tail(args), nw=max(2, args.width // 4), nh=max(2, args.height // 4),
        fps=args.fps,
    )


class PhaseSwitch:
    """Flips one /frozen or /dark pipeline between its two phases.

    A buffer probe on the test source counts frames, so the phases are exact
    in stream time (live*fps moving frames, then broken*fps broken ones, in a
    loop) from the pipeline's first frame, whatever the machine's load. The
    probe runs in the source's streaming thread after it made frame n: the
    source's properties it sets shape frame n+1, the overlays' shape frame n
    (they are downstream), so every frame of a phase looks like that phase.

    Broken phases: "frozen" stops the scroll (the picture returns to its
    start position and stays) and hides the clocks, so every raw frame is
    byte-identical; "dark" switches the source to black and hides every
    overlay (a uniform picture at luma 16).
    """

    def __init__(self, bin_, mount, fps, live, broken):
        self.src = bin_.get_by_name("src")
        self.clock = bin_.get_by_name("clock")
        self.time = bin_.get_by_name("time")
        self.label = bin_.get_by_name("label")
        self.mount = mount
        self.speed = self.src.get_property("horizontal-speed")
        self.live_frames = live * fps
        self.period = (live + broken) * fps
        self.frames = 0
        self.source_live = True  # as in the launch line
        self.overlays_live = True
        self.src.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self.on_buffer)

    def is_live(self, frame):
        return frame % self.period < self.live_frames

    def on_buffer(self, _pad, _info):
        n = self.frames
        self.frames += 1
        live = self.is_live(n)
        if live != self.overlays_live:
            self.overlays_live = live
            self.clock.set_property("silent", not live)
            self.time.set_property("silent", not live)
            if self.mount == "/dark":
                self.label.set_property("silent", not live)
        live = self.is_live(n + 1)
        if live != self.source_live:
            self.source_live = live
            if self.mount == "/frozen":
                self.src.set_property("horizontal-speed", self.speed if live else 0)
            else:
                self.src.set_property("pattern", "smpte75" if live else "black")
        return Gst.PadProbeReturn.OK


class PhaseFactory(GstRtspServer.RTSPMediaFactory):
    """/frozen and /dark: the pipeline of each URL is built from its query.

    (A plain factory has one launch line for every URL; this one reads the
    phase lengths from the URL the media is made for, once per shared media.)

    A bad query makes no element: the log says why ("rejected: ..."), and
    gst-rtsp-server answers the DESCRIBE 400 Bad Request (adding a CRITICAL
    "could not create element" line of its own). It asks only after the
    password check, so with --username a stranger gets 401 whatever the
    query.
    """

    def __init__(self, args, mount):
        super().__init__()
        self.args = args
        self.mount = mount

    def do_create_element(self, url):
        try:
            live, broken = phase_seconds(self.mount, url.query)
        except QueryError as exc:
            log("rejected: %s" % exc)
            return None
        bin_ = Gst.parse_launch(phase_launch(self.args, self.mount))
        PhaseSwitch(bin_, self.mount, self.args.fps, live, broken)
        return bin_


# --------------------------------------------------------------------------
# Loop mounts: a clip encoded once, then served with no encoding
# --------------------------------------------------------------------------

LOOP_FORMAT = 1  # bump when the clip pipeline changes: old cache files are ignored
LOOP_ENCODERS = {"h264": h264_encoder, "h265": h265_encoder}


def loop_clip_path(args, codec):
    """The cache file of a clip: its name holds everything that shapes it."""
    name = "loop-v{v}-{codec}-{w}x{h}-{fps}fps-{kbps}k-{pattern}-{secs}s.{codec}".format(
        v=LOOP_FORMAT, codec=codec, w=args.width, h=args.height, fps=args.fps,
        kbps=args.bitrate, pattern=args.pattern, secs=args.loop_seconds,
    )
    return os.path.join(args.cache_dir, name)


def loop_clip_launch(args, codec, path):
    """Offline (not live, as fast as it goes) encoding of the clip."""
    size = max(6, args.height // 40)
    return (
        "videotestsrc num-buffers={n} pattern={p} ! {caps} ! "
        "textoverlay text=\"/loop{num} ({secs} s loop, no encoding)\" "
        "halignment=right valignment=top shaded-background=true "
        "font-desc=\"Sans {size}\" ! "
        "timeoverlay halignment=left valignment=bottom shaded-background=true "
        "font-desc=\"Sans {size}\" ! {enc} ! filesink location=\"{path}\""
    ).format(
        n=args.loop_seconds * args.fps, p=args.pattern, caps=raw_caps(args, args.fps),
        num=codec[1:], secs=args.loop_seconds, size=size, enc=LOOP_ENCODERS[codec](args),
        path=path,
    )


def ensure_loop_clip(args, codec):
    """Returns the clip's path, encoding it first unless the cache has it.

    Concurrent starts (parallel tests) serialise on a lock file; the clip is
    written under a temporary name and renamed, so it is complete or absent.
    """
    path = loop_clip_path(args, codec)
    if os.path.isfile(path):
        return path
    os.makedirs(args.cache_dir, exist_ok=True)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isfile(path):
            return path  # another process made it while we waited
        for name in os.listdir(args.cache_dir):  # left by a start that was killed
            if name.startswith(os.path.basename(path) + ".") and name.endswith(".tmp"):
                os.unlink(os.path.join(args.cache_dir, name))
        tmp = "%s.%d.tmp" % (path, os.getpid())
        log("encoding the %d s %s loop clip once into %s" % (args.loop_seconds, codec, path))
        pipeline = Gst.parse_launch(loop_clip_launch(args, codec, tmp))
        pipeline.set_state(Gst.State.PLAYING)
        msg = pipeline.get_bus().timed_pop_filtered(
            Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS | Gst.MessageType.ERROR
        )
        pipeline.set_state(Gst.State.NULL)
        if msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise SystemExit("demo_rtsp_server: cannot encode the %s loop clip: %s (%s)"
                             % (codec, err.message, debug))
        os.replace(tmp, path)
    return path


def loop_launch(args, codec, path):
    """/loop264, /loop265: read, parse, payload. No decoding, no encoding.

    multifilesrc loop=true rereads the file forever as one byte stream, so the
    parser never sees an end: it numbers the frames on from the frame rate in
    the caps (DTS; see on_loop_configure for PTS) and the RTP timestamps and
    sequence numbers of every client run on across the loop point, which is a
    GOP boundary (the clip is a whole number of 1 s GOPs).
    """
    return (
        "( multifilesrc location=\"{path}\" loop=true "
        "caps=\"video/x-{codec},stream-format=byte-stream,framerate={fps}/1\" ! "
        "{codec}parse name=parse ! {pay} )"
    ).format(path=path, codec=codec, fps=args.fps, pay=PAYLOADERS[codec])


def pts_from_dts(_pad, info):
    buf = info.get_buffer()
    # Fresh from the parser, owned by this push only: no one else sees it.
    buf.pts = buf.dts
    return Gst.PadProbeReturn.OK


def on_loop_configure(_factory, media):
    """A parser fed a timestamp-less byte stream sets DTS only; the payloaders
    stamp RTP with PTS. Without B-frames PTS = DTS, so copy it."""
    parse = media.get_element().get_by_name("parse")
    parse.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, pts_from_dts)


class FilePlayer:
    """Plays a file in real time into an intervideo channel, looping forever.

    Loops with segment seeks (seamless: no flush, running time continues); if
    the demuxer ends with EOS instead, it falls back to a flushing seek.
    """

    def __init__(self, args, channel):
        self.path = args.file
        self.pipeline = Gst.parse_launch(
            "filesrc name=file ! decodebin ! queue ! videoconvert ! "
            "videoscale add-borders=true ! videorate ! {caps},format=I420 ! "
            "intervideosink channel={channel}".format(
                caps=raw_caps(args, args.fps), channel=channel
            )
        )
        self.pipeline.get_by_name("file").set_property("location", self.path)
        self.looping = False
        self.bus = self.pipeline.get_bus()
        self.bus.add_signal_watch()
        self.bus.connect("message", self.on_message)

    def start(self):
        self.pipeline.set_state(Gst.State.PAUSED)

    def stop(self):
        self.bus.remove_signal_watch()
        self.pipeline.set_state(Gst.State.NULL)

    def seek_to_start(self, flush):
        flags = Gst.SeekFlags.SEGMENT
        if flush:
            flags |= Gst.SeekFlags.FLUSH
        ok = self.pipeline.seek(
            1.0, Gst.Format.TIME, flags, Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1
        )
        if not ok:
            log("file: seek to start failed for %s" % self.path)

    def on_message(self, _bus, msg):
        if msg.type == Gst.MessageType.ASYNC_DONE and not self.looping:
            # Prerolled: switch to segment mode, then play in real time.
            self.looping = True
            self.seek_to_start(flush=True)
            self.pipeline.set_state(Gst.State.PLAYING)
        elif msg.type == Gst.MessageType.SEGMENT_DONE:
            self.seek_to_start(flush=False)
        elif msg.type == Gst.MessageType.EOS:
            self.seek_to_start(flush=True)
        elif msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            log("file: %s (%s): the stream shows black" % (err.message, debug))
            self.pipeline.set_state(Gst.State.NULL)


class FileMount:
    """Starts a FilePlayer for each shared /file media and stops it with it."""

    def __init__(self, args):
        self.args = args
        self.serial = itertools.count(1)

    def on_media_configure(self, _factory, media):
        channel = "camgate-file-%d-%d" % (os.getpid(), next(self.serial))
        media.get_element().get_by_name("src").set_property("channel", channel)
        player = FilePlayer(self.args, channel)
        media.connect("unprepared", lambda _media: player.stop())
        player.start()


# --------------------------------------------------------------------------
# Session counts (--stats-file)
# --------------------------------------------------------------------------


class SessionStats:
    """Counts RTSP sessions and media pipelines per mount into a JSON file.

    Invariants: the file always holds every mount (0 when idle); it is
    replaced atomically after every change, under a lock (the signals come
    from the server's client threads and media threads); a session counts
    once, at its first successful SETUP of a mount, and is uncounted at its
    TEARDOWN, when the RTSP connection that set it up closes (a killed client
    sends no TEARDOWN, and its streams stop with the connection, but the
    session object lingers in the pool until a timeout), or when the session
    pool drops it.
    """

    def __init__(self, path, mounts):
        self.path = path
        self.mounts = sorted(mounts, key=len, reverse=True)  # longest match first
        self.lock = threading.Lock()
        self.live = {}  # session id -> (mount, path?query as the client asked)
        self.opened = dict.fromkeys(mounts, 0)
        self.pipelines = dict.fromkeys(mounts, 0)
        with self.lock:
            self.write()

    def mount_of(self, abspath):
        for mount in self.mounts:
            if abspath == mount or abspath.startswith(mount + "/"):
                return mount
        return None

    def write(self):
        sessions = dict.fromkeys(self.opened, 0)
        by_url = {}
        for mount, url in self.live.values():
            sessions[mount] += 1
            by_url[url] = by_url.get(url, 0) + 1
        text = json.dumps(
            {"sessions": sessions, "total_sessions_opened": self.opened,
             "pipelines": self.pipelines, "sessions_by_url": by_url},
            sort_keys=True,
        )
        tmp = "%s.%d.tmp" % (self.path, os.getpid())
        with open(tmp, "w") as out:
            out.write(text + "\n")
        os.replace(tmp, self.path)

    def url_of(self, uri):
        """(mount, mount?query) of a request, or None for an unknown path."""
        mount = self.mount_of(uri.abspath)
        if mount is None:
            return None
        return mount, mount + ("?" + uri.query if uri.query else "")

    def on_client(self, _server, client):
        owned = set()  # ids of the sessions this connection set up
        described = {}  # mount -> URL of the last DESCRIBE on this connection
        client.connect("describe-request", self.on_describe, described)
        client.connect("setup-request", self.on_setup, owned, described)
        client.connect("closed", self.on_closed, owned)

    def on_describe(self, _client, ctx, described):
        if ctx.uri is not None and self.url_of(ctx.uri) is not None:
            mount, url = self.url_of(ctx.uri)
            described[mount] = url

    def on_setup(self, _client, ctx, owned, described):
        session, uri = ctx.session, ctx.uri
        if session is None or uri is None or self.url_of(uri) is None:
            return
        mount, url = self.url_of(uri)
        # Clients SETUP `Content-Base + control`, which has lost the query
        # (`/loop264/stream=0`); the server streams the media this connection
        # last DESCRIBEd on the mount, so that URL names the session.
        url = described.get(mount, url)
        with self.lock:
            sid = session.get_sessionid()
            owned.add(sid)
            if sid in self.live:
                return  # a second stream of the same session
            self.live[sid] = (mount, url)
            self.opened[mount] += 1
            self.write()

    def on_closed(self, _client, owned):
        self.forget(owned)

    def on_session_removed(self, _pool, session):
        self.forget([session.get_sessionid()])

    def forget(self, sids):
        with self.lock:
            gone = [sid for sid in sids if self.live.pop(sid, None) is not None]
            if gone:
                self.write()

    def pipeline_counter(self, mount):
        """A media-configure handler counting the pipelines of `mount`."""

        def on_media_configure(_factory, media):
            with self.lock:
                self.pipelines[mount] += 1
                self.write()
            media.connect("unprepared", lambda _media: self.pipeline_gone(mount))

        return on_media_configure

    def pipeline_gone(self, mount):
        with self.lock:
            self.pipelines[mount] -= 1
            self.write()


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------


def make_factory(launch, args, pool, factory=None):
    """A shared, non-seekable factory for `launch`, or `factory` set up alike."""
    if factory is None:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
    # One pipeline for every client of the mount...
    factory.set_shared(True)
    # ...that is non-seekable: otherwise each PLAY with `Range: npt=0-` does a
    # flushing seek that restarts the stream under every other client (and
    # concurrent PLAYs can trip gst_rtsp_media_get_rates assertions).
    factory.set_publish_clock_mode(GstRtspServer.RTSPPublishClockMode.CLOCK_AND_OFFSET)
    if pool is not None:
        factory.set_address_pool(pool)
    if args.tcp_only:
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    else:
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP)
    if args.username is not None:
        factory.add_role_from_structure(
            Gst.Structure.from_string(
                "%s, media.factory.access=(boolean)true, "
                "media.factory.construct=(boolean)true" % ROLE
            )[0]
        )
    return factory


def make_address_pool(args):
    """Unicast pool on --host so RTP/RTCP UDP sockets never bind 0.0.0.0."""
    if args.host_ip.is_unspecified:
        return None  # wildcard was asked for: default behaviour binds it.
    pool = GstRtspServer.RTSPAddressPool()
    if not pool.add_range(args.host, args.host, args.udp_min, args.udp_max, 0):
        raise SystemExit("demo_rtsp_server: cannot build UDP address pool on %s" % args.host)
    return pool


def make_auth(args):
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE)
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.username, args.password), token)
    return auth


def check_elements(args):
    needed = dict(REQUIRED_ELEMENTS)
    if args.file:
        needed.update(FILE_ELEMENTS)
    missing = sorted(
        "%s (%s)" % (name, pkg)
        for name, pkg in needed.items()
        if Gst.ElementFactory.find(name) is None
    )
    if missing:
        log("missing GStreamer elements: %s. Run demo_rtsp_server/install-deps.sh."
            % ", ".join(missing))
        sys.exit(1)
    try:
        Gst.parse_launch("videotestsrc pattern=%s ! fakesink" % args.pattern)
    except GLib.Error as exc:
        log("--pattern %s: %s" % (args.pattern, exc.message))
        sys.exit(2)
    if args.width > 2040 or args.height > 2040:
        log("warning: RTP/JPEG (RFC 2435) is limited to 2040x2040: /mjpeg will fail")


def die_with_parent():
    """Linux only: SIGTERM this process when the spawning thread exits."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            log("prctl(PR_SET_PDEATHSIG) failed: errno %d" % ctypes.get_errno())
            return
    except (OSError, AttributeError) as exc:
        log("prctl unavailable: %s" % exc)
        return
    if os.getppid() != parent:
        # The parent died before prctl took effect (we were re-parented).
        log("parent process is gone; exiting")
        sys.exit(0)


def url_host(args):
    """Host part of the URLs we print: a wildcard bind is reached via loopback."""
    host = args.host_ip
    if host.is_unspecified:
        host = ipaddress.ip_address("::1" if host.version == 6 else "127.0.0.1")
    return "[%s]" % host if host.version == 6 else str(host)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.die_with_parent:
        die_with_parent()
    Gst.init(None)
    check_elements(args)

    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    server.set_backlog(128)  # default 5: too small for a burst of viewers.

    pool = make_address_pool(args)
    factories = {
        "/test": make_factory(test_launch(args), args, pool),
        "/h265": make_factory(h265_launch(args), args, pool),
        "/mjpeg": make_factory(mjpeg_launch(args), args, pool),
    }
    for codec in ("h264", "h265"):
        clip = ensure_loop_clip(args, codec)
        factory = make_factory(loop_launch(args, codec, clip), args, pool)
        factory.connect("media-configure", on_loop_configure)
        factories["/loop" + codec[1:]] = factory
    for mount in PHASE_KEYS:
        factories[mount] = make_factory(None, args, pool, PhaseFactory(args, mount))
    factories["/still"] = make_factory(still_launch(args), args, pool)
    if args.file:
        factories["/file"] = make_factory(file_launch(args), args, pool)
        factories["/file"].connect("media-configure", FileMount(args).on_media_configure)
    if args.stats_file is not None:
        stats = SessionStats(args.stats_file, list(factories))
        server.connect("client-connected", stats.on_client)
        server.get_session_pool().connect("session-removed", stats.on_session_removed)
        for path, factory in factories.items():
            factory.connect("media-configure", stats.pipeline_counter(path))
    mounts = server.get_mount_points()
    for path, factory in factories.items():
        mounts.add_factory(path, factory)
    if args.username is not None:
        server.set_auth(make_auth(args))

    if args.verbose:
        def on_client(_server, client):
            peer = client.get_connection().get_ip()
            log("client connected from %s" % peer)
            client.connect("closed", lambda _c: log("client from %s closed" % peer))
        server.connect("client-connected", on_client)

    loop = GLib.MainLoop()

    def on_signal(signame):
        log("%s received, stopping" % signame)
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, on_signal, "SIGTERM")
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, on_signal, "SIGINT")

    if server.attach(None) == 0:
        log("cannot listen on %s:%d (port in use or address not local)" % (args.host, args.port))
        return 1
    base = "rtsp://%s:%d" % (url_host(args), server.get_bound_port())
    log("serving %s%s" % (", ".join(base + p for p in factories),
                          " (Basic auth required)" if args.username else ""))
    try:
        sys.stdout.write("READY %s\n" % base)
        sys.stdout.flush()
    except BrokenPipeError:
        pass

    loop.run()
    # Streaming threads may still be pushing: leave without running Python
    # finalizers over live GStreamer objects. The kernel closes every socket.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
