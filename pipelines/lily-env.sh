# shellcheck shell=sh
# lily-env.sh - sourced by the recipes in this folder: makes the `lily` plugin of a build tree
# visible to GStreamer when the recipes are run from the source tree, and picks the model.
#
# Plugin: $LILY_BUILD_DIR/gst if LILY_BUILD_DIR is set, else <tree>/build/gst, else the
# first <tree>/build-*/gst holding libgstlily.so; it is prepended to GST_PLUGIN_PATH. With none
# of those (an installed Lily) GStreamer's own plugin path is used as it is.
# Model: the MODEL argument of a recipe, else $LILY_MODEL.
lily_root=$(CDPATH="" cd -- "$(dirname -- "$0")/.." && pwd)
lily_gst_dir=
if [ -n "${LILY_BUILD_DIR:-}" ]; then
    lily_gst_dir="$LILY_BUILD_DIR/gst"
elif [ -f "$lily_root/build/gst/libgstlily.so" ]; then
    lily_gst_dir="$lily_root/build/gst"
else
    for d in "$lily_root"/build*/gst; do
        if [ -f "$d/libgstlily.so" ]; then lily_gst_dir=$d; break; fi
    done
fi
if [ -n "$lily_gst_dir" ]; then
    GST_PLUGIN_PATH="$lily_gst_dir${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
    export GST_PLUGIN_PATH
fi

# lily_model MODEL: prints the model to use or fails with a message.
lily_model() {
    m=${1:-${LILY_MODEL:-}}
    if [ -z "$m" ]; then
        echo "no model: pass MODEL or set LILY_MODEL (a Lily .safetensors file; lily-convert makes one)" >&2
        return 1
    fi
    if [ ! -f "$m" ]; then
        echo "model file not found: $m" >&2
        return 1
    fi
    printf '%s\n' "$m"
}

# lily_encoder OUT: the launch fragment that writes OUT by its extension.
lily_encoder() {
    case "$1" in
    *.flac) echo "audioconvert ! flacenc" ;;
    *.ogg) echo "audioconvert ! vorbisenc ! oggmux" ;;
    *.mp3) echo "audioconvert ! lamemp3enc target=bitrate bitrate=320" ;;
    *) echo "wavenc" ;;
    esac
}
