/* weights/clap.c - the names and shapes of CLAP inside an AudioSR checkpoint.
 *
 * DDPM.__init__ always builds CLAPAudioEmbeddingClassifierFreev2(amodel="HTSAT-base",
 * tmodel="roberta", embed_mode="audio") as `self.clap` (spec.md 4.4); super-resolution never
 * calls it, so Lily only needs to recognise its 507 tensors to report and drop them. Its
 * architecture is fixed, not configurable:
 *   audio: HTSAT Swin transformer (audiosr/clap/open_clip/htsat.py): STFT 1024 -> 513 bins,
 *          64 mels, patch 4 -> 64x64 patches, embed 128, depths [2, 2, 12, 2], heads
 *          [4, 8, 16, 32], window 8 (shifted windows on odd blocks carry an attn_mask buffer
 *          while the stage is wider than a window), 527 classes (AudioSet);
 *   text:  RoBERTa-base (transformers RobertaModel: vocab 50265, 514 positions, 12 layers of
 *          width 768 and FFN 3072, pooler);
 *   the audio/text projections and transforms to the joint width 512, and the torchaudio
 *   MelSpectrogram of the wrapper (window 1024, 64 mel filters).
 * Three buffers depend on library versions (RoBERTa's position_ids, the MelSpectrogram window
 * and filter bank) and are marked optional. Shapes checked against keys-basic.tsv. */
#include <stdio.h>
#include <string.h>

#include "weights/arch-impl.h"

static void add(LilyArchBuilder *b, LilyDType dt, int optional, int ndim, const int64_t *shape,
                const char *name)
{
    lily_arch_add(b, name, dt, LILY_INIT_FAN_IN, ndim > 1 ? shape[ndim - 1] : 1, ndim, shape);
    if (optional && b->st == LILY_OK) b->arch->t[b->arch->n - 1].optional = true;
}

static void swin_block(LilyArchBuilder *b, const char *p, int dim, int heads, int n_windows_mask)
{
    char n[LILY_ARCH_NAME_MAX];
    if (n_windows_mask) {
        snprintf(n, sizeof n, "%s.attn_mask", p);
        add(b, LILY_DTYPE_F32, 0, LILY_SHAPE(n_windows_mask, 64, 64), n);
    }
    snprintf(n, sizeof n, "%s.norm1", p);
    lily_arch_norm(b, n, dim);
    snprintf(n, sizeof n, "%s.attn.relative_position_bias_table", p);
    add(b, LILY_DTYPE_F32, 0, LILY_SHAPE(225, heads), n);
    snprintf(n, sizeof n, "%s.attn.relative_position_index", p);
    add(b, LILY_DTYPE_I64, 0, LILY_SHAPE(64, 64), n);
    snprintf(n, sizeof n, "%s.attn.qkv", p);
    lily_arch_linear(b, n, 3 * dim, dim, 1);
    snprintf(n, sizeof n, "%s.attn.proj", p);
    lily_arch_linear(b, n, dim, dim, 1);
    snprintf(n, sizeof n, "%s.norm2", p);
    lily_arch_norm(b, n, dim);
    snprintf(n, sizeof n, "%s.mlp.fc1", p);
    lily_arch_linear(b, n, 4 * dim, dim, 1);
    snprintf(n, sizeof n, "%s.mlp.fc2", p);
    lily_arch_linear(b, n, dim, 4 * dim, 1);
}

static void htsat(LilyArchBuilder *b)
{
    static const int depths[4] = {2, 2, 12, 2}, heads[4] = {4, 8, 16, 32};
    const char *a = "model.audio_branch";
    char n[LILY_ARCH_NAME_MAX];
    snprintf(n, sizeof n, "%s.spectrogram_extractor.stft.conv_real.weight", a);
    add(b, LILY_DTYPE_F32, 0, LILY_SHAPE(513, 1, 1024), n);
    snprintf(n, sizeof n, "%s.spectrogram_extractor.stft.conv_imag.weight", a);
    add(b, LILY_DTYPE_F32, 0, LILY_SHAPE(513, 1, 1024), n);
    snprintf(n, sizeof n, "%s.logmel_extractor.melW", a);
    add(b, LILY_DTYPE_F32, 0, LILY_SHAPE(513, 64), n);
    snprintf(n, sizeof n, "%s.bn0", a);
    lily_arch_norm(b, n, 64);
    snprintf(n, sizeof n, "%s.bn0.running_mean", a);
    add(b, LILY_DTYPE_F32, 0, LILY_SHAPE(64), n);
    snprintf(n, sizeof n, "%s.bn0.running_var", a);
    add(b, LILY_DTYPE_F32, 0, LILY_SHAPE(64), n);
    snprintf(n, sizeof n, "%s.bn0.num_batches_tracked", a);
    add(b, LILY_DTYPE_I64, 0, 0, NULL, n);
    snprintf(n, sizeof n, "%s.patch_embed.proj", a);
    lily_arch_conv2d(b, n, 128, 1, 4);
    snprintf(n, sizeof n, "%s.patch_embed.norm", a);
    lily_arch_norm(b, n, 128);
    for (int i = 0; i < 4; i++) {
        int dim = 128 << i, res = 64 >> i;
        /* Odd blocks shift their windows, and need a mask, unless one window covers the stage. */
        int mask = res > 8 ? (res / 8) * (res / 8) : 0;
        for (int j = 0; j < depths[i]; j++) {
            snprintf(n, sizeof n, "%s.layers.%d.blocks.%d", a, i, j);
            swin_block(b, n, dim, heads[i], (j % 2) ? mask : 0);
        }
        if (i < 3) {
            snprintf(n, sizeof n, "%s.layers.%d.downsample.reduction.weight", a, i);
            add(b, LILY_DTYPE_F32, 0, LILY_SHAPE(2 * dim, 4 * dim), n);
            snprintf(n, sizeof n, "%s.layers.%d.downsample.norm", a, i);
            lily_arch_norm(b, n, 4 * dim);
        }
    }
    snprintf(n, sizeof n, "%s.norm", a);
    lily_arch_norm(b, n, 1024);
    snprintf(n, sizeof n, "%s.tscam_conv.weight", a);
    add(b, LILY_DTYPE_F32, 0, LILY_SHAPE(527, 1024, 2, 3), n);
    snprintf(n, sizeof n, "%s.tscam_conv.bias", a);
    add(b, LILY_DTYPE_F32, 0, LILY_SHAPE(527), n);
    snprintf(n, sizeof n, "%s.head", a);
    lily_arch_linear(b, n, 527, 527, 1);
}

static void roberta(LilyArchBuilder *b)
{
    const char *t = "model.text_branch";
    char n[LILY_ARCH_NAME_MAX], p[LILY_ARCH_NAME_MAX];
    snprintf(n, sizeof n, "%s.embeddings.position_ids", t);
    add(b, LILY_DTYPE_I64, 1, LILY_SHAPE(1, 514), n);
    snprintf(n, sizeof n, "%s.embeddings.word_embeddings.weight", t);
    add(b, LILY_DTYPE_F32, 0, LILY_SHAPE(50265, 768), n);
    snprintf(n, sizeof n, "%s.embeddings.position_embeddings.weight", t);
    add(b, LILY_DTYPE_F32, 0, LILY_SHAPE(514, 768), n);
    snprintf(n, sizeof n, "%s.embeddings.token_type_embeddings.weight", t);
    add(b, LILY_DTYPE_F32, 0, LILY_SHAPE(1, 768), n);
    snprintf(n, sizeof n, "%s.embeddings.LayerNorm", t);
    lily_arch_norm(b, n, 768);
    for (int l = 0; l < 12; l++) {
        snprintf(p, sizeof p, "%s.encoder.layer.%d", t, l);
        static const char *const qkv[] = {"query", "key", "value"};
        for (int i = 0; i < 3; i++) {
            snprintf(n, sizeof n, "%s.attention.self.%s", p, qkv[i]);
            lily_arch_linear(b, n, 768, 768, 1);
        }
        snprintf(n, sizeof n, "%s.attention.output.dense", p);
        lily_arch_linear(b, n, 768, 768, 1);
        snprintf(n, sizeof n, "%s.attention.output.LayerNorm", p);
        lily_arch_norm(b, n, 768);
        snprintf(n, sizeof n, "%s.intermediate.dense", p);
        lily_arch_linear(b, n, 3072, 768, 1);
        snprintf(n, sizeof n, "%s.output.dense", p);
        lily_arch_linear(b, n, 768, 3072, 1);
        snprintf(n, sizeof n, "%s.output.LayerNorm", p);
        lily_arch_norm(b, n, 768);
    }
    snprintf(n, sizeof n, "%s.pooler.dense", t);
    lily_arch_linear(b, n, 768, 768, 1);
}

void lily_arch_add_clap(LilyArchBuilder *b)
{
    add(b, LILY_DTYPE_F32, 0, 0, NULL, "model.logit_scale_a");
    add(b, LILY_DTYPE_F32, 0, 0, NULL, "model.logit_scale_t");
    htsat(b);
    roberta(b);
    lily_arch_linear(b, "model.text_transform.sequential.0", 512, 512, 1);
    lily_arch_linear(b, "model.text_transform.sequential.3", 512, 512, 1);
    lily_arch_linear(b, "model.text_projection.0", 512, 768, 1);
    lily_arch_linear(b, "model.text_projection.2", 512, 512, 1);
    lily_arch_linear(b, "model.audio_transform.sequential.0", 512, 512, 1);
    lily_arch_linear(b, "model.audio_transform.sequential.3", 512, 512, 1);
    lily_arch_linear(b, "model.audio_projection.0", 512, 1024, 1);
    lily_arch_linear(b, "model.audio_projection.2", 512, 512, 1);
    add(b, LILY_DTYPE_F32, 1, LILY_SHAPE(1024), "mel_transform.spectrogram.window");
    add(b, LILY_DTYPE_F32, 1, LILY_SHAPE(513, 64), "mel_transform.mel_scale.fb");
}
