/* train/plot.h - the loss-curve picture lily-train keeps up to date (out_dir/loss.png).
 *
 * Drawn here with no plotting library: an RGB raster with axes, a light grid, tick labels in a
 * built-in 5x7 bitmap font, a log10 loss axis (linear when a value is not positive) and one
 * polyline per series, encoded as PNG (RFC 2083: IHDR, one zlib IDAT, IEND; zlib is the
 * engine's dependency already) and written atomically (temporary file, rename). */
#ifndef LILY_TRAIN_PLOT_H
#define LILY_TRAIN_PLOT_H

#include <stdint.h>

#include <lily/lily.h>

typedef struct LilyPlotSeries {
    const double *x, *y;
    int n;
    uint32_t rgb;      /* 0xRRGGBB */
    const char *label; /* legend text: digits, lower-case letters, space, . - + ( ) */
} LilyPlotSeries;

#define LILY_PLOT_WIDTH 800
#define LILY_PLOT_HEIGHT 480

/* x is the step, y the loss. Series with n == 0 are skipped. */
LilyStatus lily_plot_png(LilyContext *ctx, const char *path, const LilyPlotSeries *series, int n_series,
                         const char *x_label, const char *y_label);

#endif /* LILY_TRAIN_PLOT_H */
