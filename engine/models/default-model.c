/* models/default-model.c - which model to use when the caller names none.
 *
 * Order: $LILY_MODEL; the bundled demonstration model where `meson install` put it
 * (<prefix>/<datadir>/lily/lily-tiny.safetensors); the same file in the build tree this
 * library was built in, so an uninstalled build (GST_PLUGIN_PATH=build/gst) works too. The
 * bundled model has AudioSR's layout at tiny widths with seeded random weights: it runs every
 * stage but does not improve audio, which is why callers are told which one they got. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <lily/lily.h>

#ifndef LILY_INSTALLED_MODEL
#define LILY_INSTALLED_MODEL ""
#endif
#ifndef LILY_BUILD_TREE_MODEL
#define LILY_BUILD_TREE_MODEL ""
#endif

static int is_file(const char *p)
{
    struct stat st;
    return p[0] && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static LilyDefaultModel put(const char *p, char *path, size_t size, LilyDefaultModel kind)
{
    int n = snprintf(path, size, "%s", p);
    return n >= 0 && (size_t)n < size ? kind : LILY_DEFAULT_MODEL_NONE;
}

LilyDefaultModel lily_default_model_path(char *path, size_t size)
{
    if (!path || size == 0) return LILY_DEFAULT_MODEL_NONE;
    path[0] = '\0';
    const char *env = getenv("LILY_MODEL");
    if (env && env[0]) return put(env, path, size, LILY_DEFAULT_MODEL_ENV);
    if (is_file(LILY_INSTALLED_MODEL)) return put(LILY_INSTALLED_MODEL, path, size, LILY_DEFAULT_MODEL_BUNDLED);
    if (is_file(LILY_BUILD_TREE_MODEL)) return put(LILY_BUILD_TREE_MODEL, path, size, LILY_DEFAULT_MODEL_BUNDLED);
    return LILY_DEFAULT_MODEL_NONE;
}
