/* models/vocoder-train.h - AudioSR's HiFi-GAN generator with its backward pass, for training.
 *
 * The arithmetic of vocoder.c (hifigan/models.py Generator, ResBlock1; spec.md 4.3) as explicit
 * forward/backward pairs keeping their activations in the context's arena. Weight norm, which
 * HiFi-GAN trains with and AudioSR removes at load time, is not used: the plain weights AudioSR
 * stores are what trains (docs/training.md). */
#ifndef LILY_MODELS_VOCODER_TRAIN_H
#define LILY_MODELS_VOCODER_TRAIN_H

#include "models/layers-train.h"

typedef struct LilyVocResTape {
    const LilyVocResBlock *rb;
    LilyTUnary a1[4], a2[4];
    LilyTConv c1[4], c2[4];
} LilyVocResTape;

/* One upsampling stage: lrelu(0.1), ConvTranspose1d, the mean of its ResBlock1s. */
typedef struct LilyVocStageTape {
    LilyTUnary act;
    LilyTConv up;
    LilyVocResTape rb[LILY_VOC_MAX_KERNELS];
    int n_kernels;
} LilyVocStageTape;

typedef struct LilyVocoderTape LilyVocoderTape;

LilyStatus lily_voc_res_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyVocResBlock *rb,
                                LilyVocResTape *tp, const LilyTensor *x, LilyTensor *y);
LilyStatus lily_voc_res_backward(LilyContext *ctx, const LilyParamSet *ps, LilyVocResTape *tp,
                                 const LilyTensor *dy, LilyTensor *dx);
/* Stage i of the generator on x. */
LilyStatus lily_voc_stage_forward(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps, int i,
                                  LilyVocStageTape *tp, const LilyTensor *x, LilyTensor *y);
LilyStatus lily_voc_stage_backward(LilyContext *ctx, const LilyParamSet *ps, LilyVocStageTape *tp,
                                   const LilyTensor *dy, LilyTensor *dx);

/* mel [N, n_mels, F] -> waveform [N, 1, 480 F + 16]. */
LilyStatus lily_vocoder_train_forward(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps,
                                      const LilyTensor *mel, LilyVocoderTape **tape, LilyTensor *wave);
/* dwave -> parameter gradients (dmel when not NULL). */
LilyStatus lily_vocoder_train_backward(LilyContext *ctx, const LilyParamSet *ps, LilyVocoderTape *tape,
                                       const LilyTensor *dwave, LilyTensor *dmel);
void lily_vocoder_tape_free(LilyVocoderTape *tape);

#endif /* LILY_MODELS_VOCODER_TRAIN_H */
