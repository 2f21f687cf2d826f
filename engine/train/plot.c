/* train/plot.c - loss curves as a PNG (see plot.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "core/context.h"
#include "train/plot.h"

#define W LILY_PLOT_WIDTH
#define H LILY_PLOT_HEIGHT
#define ML 110 /* margins: left, right, top, bottom */
#define MR 24
#define MT 24
#define MB 64
#define SCALE 2 /* font pixels per glyph pixel */

typedef struct Img {
    uint8_t *px; /* W * H * 3 */
} Img;

/* 5x7 glyphs, one byte per row, bit 4 leftmost. */
typedef struct Glyph {
    char c;
    uint8_t rows[7];
} Glyph;

static const Glyph font[] = {
    {'0', {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}}, {'1', {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'2', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}}, {'3', {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e}},
    {'4', {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}}, {'5', {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}},
    {'6', {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}}, {'7', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}}, {'9', {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c}}, {'-', {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00}}, {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}}, {'/', {0x01, 0x02, 0x02, 0x04, 0x08, 0x08, 0x10}},
    {'a', {0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f}}, {'b', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1e}},
    {'c', {0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e}}, {'d', {0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f}},
    {'e', {0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e}}, {'f', {0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08}},
    {'g', {0x00, 0x0f, 0x11, 0x11, 0x0f, 0x01, 0x0e}}, {'h', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}},
    {'i', {0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e}}, {'j', {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0c}},
    {'k', {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}}, {'l', {0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'m', {0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11}}, {'n', {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}},
    {'o', {0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e}}, {'p', {0x00, 0x00, 0x1e, 0x11, 0x1e, 0x10, 0x10}},
    {'q', {0x00, 0x00, 0x0d, 0x13, 0x0f, 0x01, 0x01}}, {'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}},
    {'s', {0x00, 0x00, 0x0e, 0x10, 0x0e, 0x01, 0x1e}}, {'t', {0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06}},
    {'u', {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d}}, {'v', {0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04}},
    {'w', {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a}}, {'x', {0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11}},
    {'y', {0x00, 0x00, 0x11, 0x11, 0x0f, 0x01, 0x0e}}, {'z', {0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f}},
};

static void put(Img *im, int x, int y, uint32_t rgb)
{
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    uint8_t *p = im->px + ((size_t)y * W + (size_t)x) * 3;
    p[0] = (uint8_t)(rgb >> 16);
    p[1] = (uint8_t)(rgb >> 8);
    p[2] = (uint8_t)rgb;
}

static void hline(Img *im, int x0, int x1, int y, uint32_t rgb)
{
    for (int x = x0; x <= x1; x++) put(im, x, y, rgb);
}

static void vline(Img *im, int x, int y0, int y1, uint32_t rgb)
{
    for (int y = y0; y <= y1; y++) put(im, x, y, rgb);
}

/* Bresenham, 2 pixels thick. */
static void line(Img *im, int x0, int y0, int x1, int y1, uint32_t rgb)
{
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1, dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        put(im, x0, y0, rgb);
        put(im, x0, y0 + 1, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

static int text_width(const char *s) { return (int)strlen(s) * 6 * SCALE; }

static void text(Img *im, int x, int y, const char *s, uint32_t rgb)
{
    for (; *s; s++, x += 6 * SCALE) {
        const Glyph *g = NULL;
        for (size_t i = 0; i < sizeof font / sizeof *font; i++)
            if (font[i].c == *s) g = &font[i];
        if (!g) continue;
        for (int r = 0; r < 7; r++)
            for (int c = 0; c < 5; c++)
                if (g->rows[r] & (0x10 >> c))
                    for (int a = 0; a < SCALE; a++)
                        for (int b = 0; b < SCALE; b++) put(im, x + c * SCALE + b, y + r * SCALE + a, rgb);
    }
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving about `want` ticks over span. */
static double nice_step(double span, int want)
{
    double raw = span / want, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void fmt_num(char *buf, size_t len, double v)
{
    if (v != 0 && (fabs(v) < 1e-3 || fabs(v) >= 1e5)) snprintf(buf, len, "%.0e", v);
    else snprintf(buf, len, "%.4g", v);
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int chunk(FILE *f, const char *type, const uint8_t *data, uint32_t len)
{
    uint8_t hdr[8];
    be32(hdr, len);
    memcpy(hdr + 4, type, 4);
    uLong crc = crc32(0L, (const Bytef *)type, 4);
    if (len) crc = crc32(crc, data, len);
    uint8_t tail[4];
    be32(tail, (uint32_t)crc);
    return fwrite(hdr, 1, 8, f) == 8 && (!len || fwrite(data, 1, len, f) == len) &&
           fwrite(tail, 1, 4, f) == 4;
}

static LilyStatus write_png(LilyContext *ctx, const char *path, const Img *im)
{
    size_t raw_len = (size_t)H * (1 + 3 * W);
    uint8_t *raw = malloc(raw_len);
    uLongf zlen = compressBound((uLong)raw_len);
    uint8_t *z = malloc(zlen);
    if (!raw || !z) {
        free(raw);
        free(z);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "plot: out of memory");
    }
    for (int y = 0; y < H; y++) {
        uint8_t *row = raw + (size_t)y * (1 + 3 * W);
        row[0] = 0; /* filter: none */
        memcpy(row + 1, im->px + (size_t)y * W * 3, (size_t)W * 3);
    }
    int zrc = compress2(z, &zlen, raw, (uLong)raw_len, 9);
    free(raw);
    if (zrc != Z_OK) {
        free(z);
        return lily_error(ctx, LILY_ERR_INTERNAL, "plot: zlib failed (%d)", zrc);
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(z);
        return lily_error(ctx, LILY_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    }
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[13];
    be32(ihdr, W);
    be32(ihdr + 4, H);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* RGB */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* adaptive filtering */
    ihdr[12] = 0; /* no interlace */
    int ok = fwrite(sig, 1, 8, f) == 8 && chunk(f, "IHDR", ihdr, 13) &&
             chunk(f, "IDAT", z, (uint32_t)zlen) && chunk(f, "IEND", NULL, 0);
    free(z);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return lily_error(ctx, LILY_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    return LILY_OK;
}

LilyStatus lily_plot_png(LilyContext *ctx, const char *path, const LilyPlotSeries *series, int n_series,
                         const char *x_label, const char *y_label)
{
    Img im = {calloc((size_t)W * H * 3, 1)};
    if (!im.px) return lily_error(ctx, LILY_ERR_NO_MEMORY, "plot: out of memory");
    memset(im.px, 0xff, (size_t)W * H * 3);
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    int logy = 1;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            x0 = fmin(x0, x);
            x1 = fmax(x1, x);
            y0 = fmin(y0, y);
            y1 = fmax(y1, y);
            if (y <= 0) logy = 0;
        }
    if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0.1, y1 = 1;
    if (x1 == x0) x1 = x0 + 1;
    double ly0 = logy ? log10(y0) : y0, ly1 = logy ? log10(y1) : y1;
    if (ly1 - ly0 < 1e-9) ly0 -= 0.5, ly1 += 0.5;
    double pad = 0.05 * (ly1 - ly0);
    ly0 -= pad;
    ly1 += pad;
    const int px0 = ML, px1 = W - MR, py0 = MT, py1 = H - MB;
#define SX(x) (px0 + (int)lround(((x) - x0) / (x1 - x0) * (px1 - px0)))
#define SY(v) (py1 - (int)lround(((v) - ly0) / (ly1 - ly0) * (py1 - py0)))
    const uint32_t grid = 0xe4e4e4, axis = 0x303030;
    char buf[32];
    /* x ticks */
    double xs = nice_step(x1 - x0, 6);
    for (double x = ceil(x0 / xs) * xs; x <= x1 + 1e-9 * xs; x += xs) {
        int sx = SX(x);
        vline(&im, sx, py0, py1, grid);
        fmt_num(buf, sizeof buf, x);
        text(&im, sx - text_width(buf) / 2, py1 + 8, buf, axis);
    }
    /* y ticks: decades (and 2, 5 between them when few) on a log axis */
    if (logy && ly1 - ly0 < 1.0) {
        /* less than a decade: evenly spaced values, placed on the log axis */
        double v0 = pow(10.0, ly0), v1 = pow(10.0, ly1), ys = nice_step(v1 - v0, 5);
        for (double v = ceil(v0 / ys) * ys; v <= v1; v += ys) {
            int sy = SY(log10(v));
            hline(&im, px0, px1, sy, grid);
            fmt_num(buf, sizeof buf, v);
            text(&im, px0 - 8 - text_width(buf), sy - 7, buf, axis);
        }
    } else if (logy) {
        int few = ly1 - ly0 < 2.5;
        for (int e = (int)floor(ly0); e <= (int)ceil(ly1); e++)
            for (int k = 0; k < 3; k++) {
                static const double mult[3] = {1, 2, 5};
                if (k && !few) continue;
                double v = log10(mult[k]) + e;
                if (v < ly0 || v > ly1) continue;
                int sy = SY(v);
                hline(&im, px0, px1, sy, grid);
                fmt_num(buf, sizeof buf, mult[k] * pow(10.0, e));
                text(&im, px0 - 8 - text_width(buf), sy - 7, buf, axis);
            }
    } else {
        double ys = nice_step(ly1 - ly0, 6);
        for (double v = ceil(ly0 / ys) * ys; v <= ly1; v += ys) {
            int sy = SY(v);
            hline(&im, px0, px1, sy, grid);
            fmt_num(buf, sizeof buf, v);
            text(&im, px0 - 8 - text_width(buf), sy - 7, buf, axis);
        }
    }
    hline(&im, px0, px1, py1, axis);
    vline(&im, px0, py0, py1, axis);
    /* series */
    for (int s = 0; s < n_series; s++) {
        const LilyPlotSeries *ps = &series[s];
        int have = 0, lx = 0, ly = 0;
        for (int i = 0; i < ps->n; i++) {
            double x = ps->x[i], y = ps->y[i];
            if (!isfinite(x) || !isfinite(y) || (logy && y <= 0)) continue;
            int sx = SX(x), sy = SY(logy ? log10(y) : y);
            if (have) line(&im, lx, ly, sx, sy, ps->rgb);
            else put(&im, sx, sy, ps->rgb);
            lx = sx;
            ly = sy;
            have = 1;
        }
    }
#undef SX
#undef SY
    /* labels and legend */
    if (x_label) text(&im, (px0 + px1 - text_width(x_label)) / 2, H - 22, x_label, axis);
    if (y_label) text(&im, 8, MT - 18 < 0 ? 0 : 4, y_label, axis);
    int lyp = MT + 6, widest = 0, rows = 0;
    for (int s = 0; s < n_series; s++)
        if (series[s].n && series[s].label) {
            widest = text_width(series[s].label) > widest ? text_width(series[s].label) : widest;
            rows++;
        }
    /* an opaque box, so curves never run through the legend's text */
    for (int y = lyp - 4; rows && y < lyp + 20 * rows; y++) hline(&im, px1 - 12 - widest - 40, px1 - 4, y, 0xffffff);
    for (int s = 0; s < n_series; s++) {
        if (!series[s].n || !series[s].label) continue;
        int lx = px1 - 12 - widest - 34;
        line(&im, lx, lyp + 6, lx + 24, lyp + 6, series[s].rgb);
        text(&im, lx + 32, lyp, series[s].label, axis);
        lyp += 20;
    }
    LilyStatus st = write_png(ctx, path, &im);
    free(im.px);
    return st;
}
