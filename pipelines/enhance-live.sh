#!/bin/sh
# enhance-live.sh - enhance a live capture (PulseAudio, else ALSA) with Lily as it is recorded.
#
# Purpose: AudioSR on a microphone or any capture source, live. The output lags the input by
#   the pipeline latency (16 ms + chunk-duration + 2 x vocoder-duration + 0.32 s: 5.1 s with
#   the defaults below), and the engine must be faster than real time at these settings or the
#   elements warn that they fall behind (see their real-time-factor property).
# Inputs:  OUT    optional: a file to record the enhanced audio to (.wav, .flac, .ogg, .mp3);
#                 without it (or with "-") the enhanced audio plays on autoaudiosink
#          MODEL  a Lily model file (default: $LILY_MODEL)
#          PROP=VALUE ...  further lilyenhance properties; they override the live defaults
#                 steps=10 chunk-duration=2.56 s overlap-duration=0.32 s vocoder-duration=1.28 s
# Output:  OUT (48 kHz) or the sound card; stop with Ctrl-C (the file is closed properly: -e).
# The line (to a file):
#   gst-launch-1.0 -e pulsesrc ! lilyenhance model=MODEL steps=10 chunk-duration=2560000000 \
#       overlap-duration=320000000 vocoder-duration=1280000000 ! wavenc ! filesink location=OUT
# From the source tree the build's plugin is used (lily-env.sh; LILY_BUILD_DIR overrides).
set -eu
. "$(dirname -- "$0")/lily-env.sh"
out=-
if [ $# -gt 0 ]; then
    case "$1" in *=*) ;; *) out=$1; shift ;; esac
fi
model_arg=
if [ $# -gt 0 ]; then
    case "$1" in *=*) ;; *) model_arg=$1; shift ;; esac
fi
model=$(lily_model "$model_arg")
if gst-inspect-1.0 pulsesrc >/dev/null 2>&1; then
    src=pulsesrc
elif gst-inspect-1.0 alsasrc >/dev/null 2>&1; then
    src=alsasrc
else
    echo "neither pulsesrc nor alsasrc is installed (gst-plugins-good / gst-plugins-base)" >&2
    exit 1
fi
live="steps=10 chunk-duration=2560000000 overlap-duration=320000000 vocoder-duration=1280000000"
if [ "$out" = "-" ]; then
    # shellcheck disable=SC2086 # $live is a list of properties
    exec gst-launch-1.0 -e $src ! queue ! lilyenhance model="$model" $live "$@" ! \
        queue ! audioconvert ! audioresample ! autoaudiosink
fi
# shellcheck disable=SC2086,SC2046
exec gst-launch-1.0 -e $src ! queue ! lilyenhance model="$model" $live "$@" ! \
    $(lily_encoder "$out") ! filesink location="$out"
