#!/bin/sh
# tests/gst/test-launch-mel.sh - runs issue 2's "Done when" line with gst-launch-1.0 against
# the plugin in the build tree (GST_PLUGIN_PATH_1_0 from tests/meson.build) and checks that it
# exits 0; then dumps the mel of the same 100 buffers with filesink and checks the size:
# 100 x 1024 samples = 2.13 s pads to 5.12 s = 512 frames x 256 mels x 4 bytes = 524288 bytes.
# Output is TAP. Usage: test-launch-mel.sh [path/to/gst-launch-1.0]
set -u
launch=${1:-gst-launch-1.0}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lily-launch-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# A private registry: a stale shared one must not hide the plugin just built.
export GST_REGISTRY_1_0="$tmp/registry.bin"
export GST_REGISTRY="$tmp/registry.bin"
failed=0
echo "1..2"

if "$launch" audiotestsrc num-buffers=100 ! audio/x-raw,rate=48000 ! lilymel ! fakesink \
        >"$tmp/log1" 2>&1; then
    echo "ok 1 - gst-launch-1.0 audiotestsrc num-buffers=100 ! audio/x-raw,rate=48000 ! lilymel ! fakesink exits 0"
else
    rc=$?
    sed 's/^/# /' "$tmp/log1"
    echo "not ok 1 - the issue's launch line exited $rc (GST_PLUGIN_PATH_1_0=${GST_PLUGIN_PATH_1_0:-unset})"
    failed=1
fi

if "$launch" -q audiotestsrc num-buffers=100 ! audio/x-raw,rate=48000 ! lilymel ! \
        filesink location="$tmp/mel.f32" >"$tmp/log2" 2>&1; then
    size=$(stat -c %s "$tmp/mel.f32")
    if [ "$size" -eq 524288 ]; then
        echo "ok 2 - filesink dump is 512 frames x 256 mels of float32 ($size bytes)"
    else
        echo "not ok 2 - filesink dump is $size bytes, expected 524288 (512 x 256 x 4)"
        failed=1
    fi
else
    sed 's/^/# /' "$tmp/log2"
    echo "not ok 2 - the filesink line failed"
    failed=1
fi
exit $failed
