/* tools/common/gst-decode.h - reading any audio file through GStreamer, for the tools that
 * decode (lily-enhance, lily-eval): decodebin to interleaved F32 at 48 kHz into an appsink,
 * and the error a pipeline left on its bus. Messages start with the tool's name. */
#ifndef LILY_TOOLS_GST_DECODE_H
#define LILY_TOOLS_GST_DECODE_H

#include <gst/app/gstappsink.h>
#include <gst/gst.h>

/* A (not yet started) pipeline decoding `path`; its appsink in *sink (a reference). channels
 * 0 keeps the file's channel count, otherwise audioconvert mixes to that many. NULL, with a
 * message on stderr, when the pipeline cannot be built. */
GstElement *lily_tool_decoder(const char *tool, const char *path, int channels, GstAppSink **sink);

/* Prints "TOOL: WHAT: message" for an error message on the pipeline's bus (its debug text too
 * when LILY_DEBUG is set); returns whether there was one. */
int lily_tool_bus_error(GstElement *pipeline, const char *tool, const char *what);

#endif /* LILY_TOOLS_GST_DECODE_H */
