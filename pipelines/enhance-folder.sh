#!/bin/sh
# enhance-folder.sh - enhance every audio file of a folder with Lily, one after the other.
#
# Purpose: batch AudioSR over a folder (not recursive). Each file goes through the same
#   pipeline as enhance-file.sh; a file that fails is reported and the batch goes on.
# Inputs:  IN_DIR   folder with the inputs (.wav .flac .mp3 .ogg .oga .opus .m4a .aac .aiff)
#          OUT_DIR  folder for the results (created); each is <name>.<FORMAT>
#          MODEL    a Lily model file (default: $LILY_MODEL)
#          PROP=VALUE ...  further lilyenhance properties for every file
#          FORMAT   environment variable: wav (default), flac, ogg or mp3
# Output:  OUT_DIR/<name>.<FORMAT> per input (48 kHz, as long as the input); a summary line;
#          exit status 1 if any file failed.
# The line run per file:
#   gst-launch-1.0 -e filesrc location=IN_DIR/x.mp3 ! decodebin ! lilyenhance model=MODEL ! \
#       wavenc ! filesink location=OUT_DIR/x.wav
# From the source tree the build's plugin is used (lily-env.sh; LILY_BUILD_DIR overrides).
set -eu
if [ $# -lt 2 ]; then
    echo "usage: $0 IN_DIR OUT_DIR [MODEL] [PROP=VALUE ...]" >&2
    exit 2
fi
here=$(dirname -- "$0")
. "$here/lily-env.sh"
in_dir=$1
out_dir=$2
shift 2
model_arg=
if [ $# -gt 0 ]; then
    case "$1" in *=*) ;; *) model_arg=$1; shift ;; esac
fi
model=$(lily_model "$model_arg")
format=${FORMAT:-wav}
mkdir -p "$out_dir"
done_n=0
failed_n=0
for f in "$in_dir"/*; do
    [ -f "$f" ] || continue
    case "$(printf '%s' "$f" | tr '[:upper:]' '[:lower:]')" in
    *.wav | *.flac | *.mp3 | *.ogg | *.oga | *.opus | *.m4a | *.aac | *.aiff | *.aif) ;;
    *) continue ;;
    esac
    name=$(basename -- "$f")
    out="$out_dir/${name%.*}.$format"
    echo "enhancing $f -> $out"
    if sh "$here/enhance-file.sh" "$f" "$out" "$model" "$@"; then
        done_n=$((done_n + 1))
    else
        echo "FAILED: $f" >&2
        failed_n=$((failed_n + 1))
    fi
done
echo "$done_n file(s) enhanced, $failed_n failed"
[ "$failed_n" -eq 0 ]
