/* models/discriminators.h - HiFi-GAN's discriminators, for training the vocoder.
 *
 * Reference: jik876/hifi-gan models.py (Kong et al. 2020): MultiPeriodDiscriminator (periods
 * 2, 3, 5, 7, 11; DiscriminatorP: the waveform reflect-padded to a multiple of the period and
 * folded to [T/p, p], five Conv2d (5x1, stride 3x1 except the last, 32/128/512/1024/1024
 * channels) with leaky ReLU 0.1, then a 3x1 conv_post) and MultiScaleDiscriminator (three
 * DiscriminatorS on the waveform, the waveform mean-pooled once and twice with AvgPool1d(4, 2,
 * padding 2); seven Conv1d (kernel 15, then 41 with strides 2, 2, 4, 4, 1 and groups 4, 16,
 * 16, 16, then 5) with leaky ReLU 0.1, then conv_post). Each returns its score map and its
 * feature maps (every activation after a leaky ReLU, and the score map).
 * Differences, documented in docs/training.md: plain weights instead of weight norm (and of
 * spectral norm on the first DiscriminatorS); widths scaled by train.disc_width (1 =
 * HiFi-GAN's; groups shrink to divide scaled widths). The parameters live here, not in the
 * model file: the vocoder stage keeps them in its checkpoints. */
#ifndef LILY_MODELS_DISCRIMINATORS_H
#define LILY_MODELS_DISCRIMINATORS_H

#include "models/layers-train.h"

#define LILY_MPD_COUNT 5
#define LILY_MSD_COUNT 3
#define LILY_DISC_COUNT (LILY_MPD_COUNT + LILY_MSD_COUNT)
#define LILY_DISC_MAX_FMAPS 8

typedef struct LilyDiscP {
    int period;
    LilyConv convs[5], post;
} LilyDiscP;

typedef struct LilyDiscS {
    LilyConv convs[7], post;
    int groups[7], stride[7], kernel[7], pad[7];
} LilyDiscS;

typedef struct LilyDiscriminators {
    LilyDiscP mpd[LILY_MPD_COUNT];
    LilyDiscS msd[LILY_MSD_COUNT];
    LilyParam *params; /* "mpd.discriminators.<i>.convs.<j>.weight", ... */
    int n_params;
    void *memory;
    struct LilyBackend mem_backend;
    LilyTensor pool_w; /* [1, 1, 4] of 0.25: AvgPool1d(4, 2, 2), count_include_pad */
    LilyConv pool;     /* {&pool_w, NULL} */
    double width;
} LilyDiscriminators;

typedef struct LilyDiscOut {
    LilyTensor out;                          /* score map */
    LilyTensor fmap[LILY_DISC_MAX_FMAPS];    /* fmap[n_fmaps - 1] is the score map */
    int n_fmaps;
} LilyDiscOut;

typedef struct LilyDiscTape LilyDiscTape;

/* Random parameters (PyTorch's Conv defaults, Philox-keyed by seed and name). */
LilyStatus lily_discriminators_new(LilyContext *ctx, double width, uint64_t seed,
                                   LilyDiscriminators **out);
void lily_discriminators_free(LilyDiscriminators *d);

/* Discriminator `which` (0-4: periods 2, 3, 5, 7, 11; 5-7: scales 1, 1/2, 1/4) on wave
 * [N, 1, T]. */
LilyStatus lily_disc_forward(LilyContext *ctx, const LilyDiscriminators *d, const LilyParamSet *ps,
                             int which, const LilyTensor *wave, LilyDiscTape **tape, LilyDiscOut *out);
/* dout: gradient of the score map (may be NULL); dfmap[k] that of feature map k (entries may be
 * NULL; dfmap itself may be NULL). dwave (may be NULL) receives the waveform's gradient. */
LilyStatus lily_disc_backward(LilyContext *ctx, const LilyParamSet *ps, LilyDiscTape *tape,
                              const LilyTensor *dout, const LilyTensor *const *dfmap,
                              LilyTensor *dwave);
void lily_disc_tape_free(LilyDiscTape *tape);

#endif /* LILY_MODELS_DISCRIMINATORS_H */
