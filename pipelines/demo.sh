#!/bin/sh
# demo.sh - the main job on the bundled default: make a band-limited MP3 and enhance it.
#
# Purpose: show the whole chain from a fresh build: a 5 s test signal (a sawtooth sweep plus
#   noise) is low-passed to 4 kHz and resampled to 8 kHz (a telephone band), encoded as MP3,
#   then decoded and enhanced to 48 kHz by the `lilyenhance` bin through gst-launch-1.0.
# Inputs:  OUTDIR (default: demo-out) and optional lilyenhance properties (e.g. steps=50).
#          The model is $LILY_MODEL, else the bundled build/tools/lily-tiny.safetensors — the
#          tiny architecture with seeded RANDOM weights: it exercises every stage, but being
#          untrained it does not make the audio better. Use a trained model or AudioSR's
#          checkpoint converted with lily-convert for real enhancement.
# Output:  OUTDIR/input-8k.mp3 and OUTDIR/enhanced-48k.wav (48 kHz, as long as the input).
# The enhancement line:
#   gst-launch-1.0 filesrc location=input-8k.mp3 ! decodebin ! lilyenhance model=MODEL steps=10 \
#       ! wavenc ! filesink location=enhanced-48k.wav
set -eu
here=$(CDPATH="" cd -- "$(dirname -- "$0")" && pwd)
out=${1:-demo-out}
[ $# -gt 0 ] && shift
. "$here/lily-env.sh"
model=${LILY_MODEL:-}
if [ -z "$model" ]; then
    for d in "$here/../build" "$here"/../build-*; do
        if [ -f "$d/tools/lily-tiny.safetensors" ]; then model="$d/tools/lily-tiny.safetensors"; break; fi
    done
fi
if [ -z "$model" ]; then
    echo "demo: no model: build first (bash .ci/setup) or set LILY_MODEL" >&2
    exit 1
fi
mkdir -p "$out"
echo "demo: making $out/input-8k.mp3 (5 s, band-limited to 4 kHz, 8 kHz MP3)"
gst-launch-1.0 -q audiotestsrc wave=saw freq=220 num-buffers=240 samplesperbuffer=1000 \
    ! audio/x-raw,format=F32LE,rate=48000,channels=1 ! audiocheblimit mode=low-pass cutoff=4000 poles=8 \
    ! audioresample ! audio/x-raw,rate=8000 ! audioconvert ! lamemp3enc bitrate=32 \
    ! filesink location="$out/input-8k.mp3"
echo "demo: enhancing with $model (untrained unless you set LILY_MODEL)"
start=$(date +%s)
sh "$here/enhance-file.sh" "$out/input-8k.mp3" "$out/enhanced-48k.wav" "$model" steps=10 "$@"
end=$(date +%s)
echo "demo: wrote $out/enhanced-48k.wav ($(wc -c < "$out/enhanced-48k.wav") bytes, 48 kHz) in $((end - start)) s"
