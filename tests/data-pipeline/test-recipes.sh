#!/bin/sh
# tests/data-pipeline/test-recipes.sh - issue 7's "Done when": pipelines/make-dataset.sh turns a
# folder of MP3, FLAC and WAV files (made here with audiotestsrc ! encoder) into a dataset the
# engine's reader loads (lily-dataset verify opens it and reads every value), with only the
# requested filter families and cutoffs; a second run appends nothing; pipelines/codec-pairs.sh
# makes MP3 round-trip pairs from the same folder. Output is TAP.
# Usage: test-recipes.sh LILY_DATASET PIPELINES_DIR [GST_LAUNCH]
set -u
tool=$1 pipelines=$2 launch=${3:-gst-launch-1.0}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lily-recipes-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export GST_REGISTRY_1_0="$tmp/registry.bin" GST_REGISTRY="$tmp/registry.bin"
export LILY_DATASET="$tool" GST_LAUNCH="$launch" LILY_PROGRESS=none
failed=0
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; failed=1; }
check() { if [ "$1" = "$2" ]; then ok "$3 ($1)"; else not_ok "$3: got '$1', expected '$2'"; fi; }
json() { sed -n "s/.*\"$2\": \([0-9.]*\).*/\1/p" "$1"; }
echo "1..11"

# Media: 2.04 s MP3 (44.1 kHz stereo), 1.5 s FLAC (48 kHz), 1.4 s WAV (22.05 kHz), and a text
# file the folder walk must ignore. At 0.64 s segments: 3 + 2 + 2 = 7 segments, 3 short tails.
mkdir -p "$tmp/media/sub"
if "$launch" -q audiotestsrc wave=pink-noise num-buffers=88 samplesperbuffer=1024 ! \
    audio/x-raw,rate=44100,channels=2 ! audioconvert ! lamemp3enc bitrate=128 ! \
    filesink location="$tmp/media/a.mp3" &&
"$launch" -q audiotestsrc wave=white-noise volume=0.3 num-buffers=72 samplesperbuffer=1000 ! \
    audio/x-raw,rate=48000,channels=1 ! audioconvert ! flacenc ! \
    filesink location="$tmp/media/sub/b.flac" &&
"$launch" -q audiotestsrc wave=pink-noise num-buffers=30 samplesperbuffer=1029 ! \
    audio/x-raw,rate=22050,channels=1 ! audioconvert ! wavenc ! \
    filesink location="$tmp/media/c with space.wav" &&
    echo "not audio" >"$tmp/media/notes.txt"; then
    ok "made a.mp3, sub/b.flac, 'c with space.wav' with gst-launch-1.0"
else
    not_ok "could not make the test media"
fi

out="$tmp/set"
if "$pipelines/make-dataset.sh" --filters ellip,butter --cutoff 4000:12000 --order 4:8 \
        --segment 0.64 --seed 3 "$out" "$tmp/media" >"$tmp/make.log" 2>&1; then
    ok "make-dataset.sh --filters ellip,butter --cutoff 4000:12000 --order 4:8 exits 0"
else
    sed 's/^/# /' "$tmp/make.log"; not_ok "make-dataset.sh failed"
fi
sed 's/^/# /' "$tmp/make.log"

if "$tool" verify "$out" >"$tmp/verify.log" 2>&1; then ok "lily-dataset verify: the reader opens every shard, 0 problems"
else sed 's/^/# /' "$tmp/verify.log"; not_ok "lily-dataset verify failed"; fi

"$tool" stats "$out" --json >"$tmp/stats.json" 2>&1
sed 's/^/# /' "$tmp/stats.json"
check "$(json "$tmp/stats.json" sources)" 3 "3 sources (notes.txt ignored)"
check "$(json "$tmp/stats.json" segments)" 7 "7 segments of 0.64 s"
check "$(json "$tmp/stats.json" short_tails)" 3 "3 short tails counted"
check "$(json "$tmp/stats.json" cheby1)$(json "$tmp/stats.json" bessel)" 00 "no cheby1 or bessel draws"
hist=$(sed -n 's/.*"cutoff_khz_histogram": \[\([0-9, ]*\)\].*/\1/p' "$tmp/stats.json" | tr -d ' ')
outside=$(echo "$hist" | awk -F, '{s=0; for (i=1;i<=NF;i++) if ((i-1)<4 || (i-1)>11) s+=$i; print s}')
check "$outside" 0 "every cutoff within 4-12 kHz"

"$pipelines/make-dataset.sh" --filters ellip,butter --cutoff 4000:12000 --order 4:8 \
    --segment 0.64 --seed 3 "$out" "$tmp/media" >"$tmp/again.log" 2>&1
"$tool" stats "$out" --json >"$tmp/stats2.json" 2>&1
if grep -q "0 files added, 3 skipped" "$tmp/again.log"; then ok "a second run skips the 3 files"
else sed 's/^/# /' "$tmp/again.log"; not_ok "the second run did not skip the files"; fi
check "$(json "$tmp/stats2.json" segments)" 7 "still 7 segments after the second run"

pairs="$tmp/pairs"
if "$pipelines/codec-pairs.sh" --codec mp3 --bitrate 64 --segment 0.64 "$pairs" "$tmp/media" \
        >"$tmp/pairs.log" 2>&1 && "$tool" verify "$pairs" >>"$tmp/pairs.log" 2>&1; then
    "$tool" stats "$pairs" --json >"$tmp/pairs.json"
    sed 's/^/# /' "$tmp/pairs.json"
    check "$(json "$tmp/pairs.json" stream_low)" "$(json "$tmp/pairs.json" segments)" \
        "codec-pairs.sh: every segment's low side is the MP3 round trip, verify OK"
else
    sed 's/^/# /' "$tmp/pairs.log"; not_ok "codec-pairs.sh or its verify failed"
fi
exit $failed
