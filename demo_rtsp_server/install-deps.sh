#!/bin/sh
# Installs the Debian packages the demo RTSP server needs (Debian 12 / Ubuntu).
# Idempotent: does nothing (no apt-get at all) when every package is present.
# The Dockerfile runs this same script, so local and container setups match.
#
#   python3-gi                  the `gi` module for /usr/bin/python3
#   gir1.2-gst-rtsp-server-1.0  GStreamer's RTSP server library + bindings
#   gstreamer1.0-plugins-base   videotestsrc, videoconvert, videoscale, decodebin
#   gstreamer1.0-plugins-good   rtph264pay, rtph265pay, rtpjpegpay, jpegenc,
#                               multifilesrc (the /loop* mounts), mp4/mkv demuxers
#   gstreamer1.0-plugins-bad    x265enc (/h265, /loop265), h264parse, h265parse,
#                               intervideosrc/sink (the /file loop)
#   gstreamer1.0-plugins-ugly   x264enc
#   gstreamer1.0-x              clockoverlay, timeoverlay, textoverlay (Pango; pulls in a font)
#   gstreamer1.0-libav          decoders for --file (H.264, HEVC, MPEG-4, ...)
set -eu

PACKAGES="python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
gstreamer1.0-x gstreamer1.0-libav"

missing=""
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing="$missing $pkg"
done

if [ -z "$missing" ]; then
    echo "demo_rtsp_server: all packages present" >&2
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "demo_rtsp_server: need root (or sudo) to install:$missing" >&2
    exit 1
fi

echo "demo_rtsp_server: installing:$missing" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
# shellcheck disable=SC2086  # word splitting of the package list is intended
$SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends $missing
