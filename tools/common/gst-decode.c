/* tools/common/gst-decode.c - see gst-decode.h. */
#include <stdio.h>
#include <stdlib.h>

#include "gst-decode.h"

GstElement *lily_tool_decoder(const char *tool, const char *path, int channels, GstAppSink **sink)
{
    gchar *loc = g_strescape(path, NULL);
    gchar *ch = channels > 0 ? g_strdup_printf(",channels=%d", channels) : g_strdup("");
    gchar *desc = g_strdup_printf("filesrc location=\"%s\" ! decodebin ! audioconvert ! "
                                  "audioresample ! audio/x-raw,format=F32LE,rate=48000,"
                                  "layout=interleaved%s ! appsink name=sink sync=false",
                                  loc, ch);
    GError *err = NULL;
    GstElement *p = gst_parse_launch(desc, &err);
    g_free(desc);
    g_free(ch);
    g_free(loc);
    if (!p) {
        fprintf(stderr, "%s: %s: cannot build the decoder: %s\n", tool, path, err ? err->message : "?");
        g_clear_error(&err);
        return NULL;
    }
    *sink = GST_APP_SINK(gst_bin_get_by_name(GST_BIN(p), "sink"));
    return p;
}

int lily_tool_bus_error(GstElement *pipeline, const char *tool, const char *what)
{
    GstBus *bus = gst_element_get_bus(pipeline);
    GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    int had = 0;
    if (msg) {
        GError *err = NULL;
        gchar *dbg = NULL;
        gst_message_parse_error(msg, &err, &dbg);
        fprintf(stderr, "%s: %s: %s\n", tool, what, err ? err->message : "unknown error");
        if (dbg && getenv("LILY_DEBUG")) fprintf(stderr, "  %s\n", dbg);
        g_clear_error(&err);
        g_free(dbg);
        gst_message_unref(msg);
        had = 1;
    }
    gst_object_unref(bus);
    return had;
}
