#!/bin/sh
# enhance-file.sh - enhance one audio file to 48 kHz with Lily (AudioSR) through GStreamer.
#
# Purpose: the whole AudioSR chain on any file GStreamer can decode (MP3, FLAC, Ogg, WAV, ...,
#   any rate and channel count; each channel is enhanced on its own).
# Inputs:  IN     the file to enhance
#          OUT    where to write; the extension picks the format: .wav (32-bit float),
#                 .flac, .ogg (Vorbis), .mp3 (320 kb/s); anything else is WAV
#          MODEL  a Lily model file (default: $LILY_MODEL)
#          PROP=VALUE ...  further lilyenhance properties, e.g. steps=20 device=cuda
#                 chunk-duration=5120000000 (gst-inspect-1.0 lilyenhance lists them)
# Output:  OUT, 48 kHz, as long as IN; exit status 0 on success (on failure OUT is removed).
# The line (for a WAV):
#   gst-launch-1.0 -e filesrc location=IN ! decodebin ! lilyenhance model=MODEL ! \
#       wavenc ! filesink location=OUT
# From the source tree the build's plugin is used (lily-env.sh; LILY_BUILD_DIR overrides).
set -eu
if [ $# -lt 2 ]; then
    echo "usage: $0 IN OUT [MODEL] [PROP=VALUE ...]" >&2
    exit 2
fi
. "$(dirname -- "$0")/lily-env.sh"
in=$1
out=$2
shift 2
model_arg=
if [ $# -gt 0 ]; then
    case "$1" in *=*) ;; *) model_arg=$1; shift ;; esac
fi
model=$(lily_model "$model_arg")
if [ ! -f "$in" ]; then
    echo "input not found: $in" >&2
    exit 1
fi
# shellcheck disable=SC2046 # the encoder fragment is meant to be split into words
if ! gst-launch-1.0 -q -e filesrc location="$in" ! decodebin ! \
    lilyenhance model="$model" "$@" ! $(lily_encoder "$out") ! filesink location="$out"; then
    rm -f "$out" # no half-written file is left behind
    exit 1
fi
