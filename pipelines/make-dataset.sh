#!/bin/sh
# pipelines/make-dataset.sh - a folder of media files (MP3, FLAC, WAV, Ogg, anything GStreamer
# decodes) -> a Lily training dataset (docs/datasets.md), with the degradation mix chosen by
# flags. Each file is decoded by uridecodebin ! audioconvert ! audioresample ! lilytrainsink
# (lily-dataset make); the low side of every segment is AudioSR's randomized low-pass with a
# family, order and cutoff drawn per segment. Running it again appends files that are new and
# skips those already in the dataset. Ends with the dataset's statistics.
#
# Usage: make-dataset.sh [options] OUT_DIR MEDIA_FILES_OR_FOLDERS...
#   --config FILE        Lily config.yaml (its data section gives the defaults)
#   --filters LIST       filter families, e.g. ellip,butter (default: all four)
#   --cutoff MIN:MAX     cutoff range in Hz, drawn log-uniformly (default 2000:16000)
#   --order MIN:MAX      filter order range (default 2:10)
#   --seed N             seed of the draws and of the train/validation split
#   --segment SECONDS    segment length, a multiple of 0.64 (default 5.12)
#   --hop SECONDS        distance between segment starts (default: the segment length)
#   --shard-segments N   segments per shard file (default 256)
# Example:
#   pipelines/make-dataset.sh --filters ellip,butter --cutoff 4000:12000 --order 4:8 \
#       data/shards ~/music
# lily-dataset is $LILY_DATASET, else the build tree's (lily-env.sh, LILY_BUILD_DIR), else on PATH.
set -eu

die() { echo "make-dataset.sh: $*" >&2; exit 2; }

# From the source tree the build's plugin is used (lily-env.sh; LILY_BUILD_DIR overrides).
here=$(CDPATH="" cd -- "$(dirname -- "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lily-env.sh
[ -f "$here/lily-env.sh" ] && . "$here/lily-env.sh"
tool=${LILY_DATASET:-}
if [ -z "$tool" ]; then
    for t in "${LILY_BUILD_ROOT:-}/tools/lily-dataset" "${LILY_BUILD_DIR:-}/tools/lily-dataset" \
             "${lily_gst_dir:+$lily_gst_dir/../tools/lily-dataset}"; do
        if [ -x "$t" ] && [ -f "$t" ]; then tool=$t; break; fi
    done
fi
if [ -z "$tool" ]; then
    command -v lily-dataset >/dev/null 2>&1 || \
        die "lily-dataset not found: set LILY_DATASET, LILY_BUILD_DIR or PATH"
    tool=lily-dataset
fi

args=""
add() { args="$args $(printf '%s' "$1" | sed "s/'/'\\\\''/g; s/^/'/; s/\$/'/")"; }
while [ $# -gt 0 ]; do
    case "$1" in
    --config|--filters|--cutoff|--order|--seed|--segment|--hop|--shard-segments)
        [ $# -ge 2 ] || die "$1 needs a value"
        add "$1"; add "$2"; shift 2 ;;
    --help|-h) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
    esac
done
[ $# -ge 2 ] || die "usage: make-dataset.sh [options] OUT_DIR MEDIA... (see --help)"
out=$1; shift
for m in "$@"; do add "$m"; done

status=0
eval "\"\$tool\" make --out \"\$out\" $args" || status=$?
# 3: some files could not be decoded (reported above); the dataset is still valid.
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then exit "$status"; fi
"$tool" stats "$out"
exit "$status"
