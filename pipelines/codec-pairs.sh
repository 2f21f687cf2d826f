#!/bin/sh
# pipelines/codec-pairs.sh - training pairs whose low side is a codec round trip made upstream,
# not a filter: every file is decoded, resampled to 48 kHz mono and split by a tee; one branch
# is the high side, the other goes through an encoder and its decoder (MP3, Opus, or an 8 kHz
# mu-law telephone band) and back to 48 kHz into lilytrainsink's `low` pad, which aligns it
# (timestamps, then the codec delay by cross-correlation: 1105 samples for LAME + mpg123)
# and records the round trip's description per segment.
#
# Usage: codec-pairs.sh [options] OUT_DIR MEDIA_FILES_OR_FOLDERS...
#   --codec mp3|opus|telephone   (default mp3)
#   --bitrate KBITS              mp3 / opus bit rate (default 64)
#   --config FILE                Lily config.yaml (segment length, seed, shard size, ...)
#   --segment SECONDS            segment length, a multiple of 0.64
#   --seed N                     seed of the train/validation split
# One gst-launch-1.0 per file; each file ends its own (possibly short) shard. Files already in
# the dataset are skipped by the element. Ends with lily-dataset stats when it is found.
set -eu

die() { echo "codec-pairs.sh: $*" >&2; exit 2; }
# From the source tree the build's plugin is used (lily-env.sh; LILY_BUILD_DIR overrides).
here=$(CDPATH="" cd -- "$(dirname -- "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lily-env.sh
[ -f "$here/lily-env.sh" ] && . "$here/lily-env.sh"

codec=mp3 bitrate=64 config="" segment="" seed=""
while [ $# -gt 0 ]; do
    case "$1" in
    --codec) codec=$2; shift 2 ;;
    --bitrate) bitrate=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --segment) segment=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --help|-h) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
    esac
done
[ $# -ge 2 ] || die "usage: codec-pairs.sh [options] OUT_DIR MEDIA... (see --help)"
out=$1; shift
launch=${GST_LAUNCH:-gst-launch-1.0}

case "$codec" in
mp3) low="audioconvert ! lamemp3enc target=bitrate bitrate=$bitrate cbr=true ! mpegaudioparse ! mpg123audiodec"
     desc="mp3 $bitrate kbit/s (lamemp3enc, mpg123audiodec)" ;;
opus) low="audioconvert ! opusenc bitrate=$((bitrate * 1000)) ! opusdec"
      desc="opus $bitrate kbit/s (opusenc, opusdec)" ;;
telephone) low="audioresample ! audio/x-raw,rate=8000 ! audioconvert ! audiochebband mode=band-pass lower-frequency=300 upper-frequency=3400 poles=4 ! audioconvert ! mulawenc ! mulawdec"
           desc="telephone: 8 kHz, 300-3400 Hz band-pass, mu-law" ;;
*) die "unknown codec '$codec' (mp3, opus, telephone)" ;;
esac

props="location=$out"
[ -n "$config" ] && props="$props config=$(realpath "$config")"
[ -n "$segment" ] && props="$props segment-duration=$(awk "BEGIN{printf \"%.0f\", $segment * 1000000000}")"
[ -n "$seed" ] && props="$props seed=$seed"
caps="audio/x-raw,format=F32LE,rate=48000,channels=1"

files=$(mktemp "${TMPDIR:-/tmp}/codec-pairs-XXXXXX")
trap 'rm -f "$files"' EXIT
for m in "$@"; do
    if [ -d "$m" ]; then
        find "$m" -type f \( -iname '*.wav' -o -iname '*.flac' -o -iname '*.mp3' -o -iname '*.ogg' \
            -o -iname '*.opus' -o -iname '*.m4a' -o -iname '*.aif' -o -iname '*.aiff' \) | sort
    else
        printf '%s\n' "$m"
    fi
done >"$files"

n=$(wc -l <"$files") i=0 failed=0
while IFS= read -r f; do
    i=$((i + 1))
    echo "[$i/$n] $f ($codec)"
    # The source URI comes from filesrc's answer to the URI query (file://<absolute path>).
    # shellcheck disable=SC2086
    if ! "$launch" -q -e filesrc location="$(realpath "$f")" ! decodebin ! audioconvert ! audioresample ! \
            $caps ! tee name=t \
            t. ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=67108864 ! \
                lilytrainsink name=s $props low-description="$desc" \
            t. ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=67108864 ! \
                $low ! audioconvert ! audioresample ! $caps ! s.low </dev/null; then
        echo "codec-pairs.sh: $f failed" >&2
        failed=$((failed + 1))
    fi
done <"$files"

tool=${LILY_DATASET:-}
for t in "${LILY_BUILD_ROOT:-}/tools/lily-dataset" "${LILY_BUILD_DIR:-}/tools/lily-dataset" \
         "${lily_gst_dir:+$lily_gst_dir/../tools/lily-dataset}"; do
    if [ -z "$tool" ] && [ -x "$t" ] && [ -f "$t" ]; then tool=$t; fi
done
[ -z "$tool" ] && command -v lily-dataset >/dev/null 2>&1 && tool=lily-dataset
if [ -n "$tool" ]; then "$tool" stats "$out"; fi
[ "$failed" -eq 0 ] || exit 3
