/* weights/keymap.c - which AudioSR component a state-dict name belongs to, and what each
 * component is for (spec.md section 2: "used by SR inference?"). Component names are those of
 * shared/audiosr/keys-basic.tsv's last column. */
#include <string.h>

#include "weights/arch.h"

static const struct {
    const char *name;
    LilyUse use;
} components[LILY_COMP_COUNT] = {
    [LILY_COMP_DDPM_BUFFERS] = {"ddpm_buffers", LILY_USE_UNUSED}, /* scale_factor alone is SR */
    [LILY_COMP_CLAP] = {"clap", LILY_USE_UNUSED},
    [LILY_COMP_UNET] = {"unet", LILY_USE_SR},
    [LILY_COMP_UNET_EMA] = {"unet_ema", LILY_USE_UNUSED},
    [LILY_COMP_VAE_ENCODER] = {"vae_encoder", LILY_USE_TRAIN},
    [LILY_COMP_VAE_DECODER] = {"vae_decoder", LILY_USE_SR},
    [LILY_COMP_VAE_QUANT] = {"vae_quant", LILY_USE_SR},           /* quant_conv: training */
    [LILY_COMP_VOCODER] = {"vocoder", LILY_USE_SR},
    [LILY_COMP_COND_VAE_ENCODER] = {"cond_vae_encoder", LILY_USE_SR},
    [LILY_COMP_COND_VAE_DECODER] = {"cond_vae_decoder", LILY_USE_UNUSED},
    [LILY_COMP_COND_VAE_QUANT] = {"cond_vae_quant", LILY_USE_SR}, /* post_quant_conv: unused */
    [LILY_COMP_COND_VAE_VOCODER] = {"cond_vae_vocoder", LILY_USE_UNUSED},
    [LILY_COMP_UNKNOWN] = {"unknown", LILY_USE_UNUSED},
};

const char *lily_component_name(LilyComponent c)
{
    return (c >= 0 && c < LILY_COMP_COUNT) ? components[c].name : "unknown";
}

LilyUse lily_component_use(LilyComponent c)
{
    return (c >= 0 && c < LILY_COMP_COUNT) ? components[c].use : LILY_USE_UNUSED;
}

const char *lily_use_name(LilyUse u)
{
    switch (u) {
    case LILY_USE_SR: return "sr";
    case LILY_USE_TRAIN: return "train";
    case LILY_USE_UNUSED: return "unused";
    }
    return "?";
}

static int starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

LilyComponent lily_component_of_name(const char *name)
{
    static const struct {
        const char *prefix;
        LilyComponent comp;
    } prefixes[] = {
        {"model.diffusion_model.", LILY_COMP_UNET},
        {"model_ema.", LILY_COMP_UNET_EMA},
        {"clap.", LILY_COMP_CLAP},
        {"first_stage_model.encoder.", LILY_COMP_VAE_ENCODER},
        {"first_stage_model.decoder.", LILY_COMP_VAE_DECODER},
        {"first_stage_model.quant_conv.", LILY_COMP_VAE_QUANT},
        {"first_stage_model.post_quant_conv.", LILY_COMP_VAE_QUANT},
        {"first_stage_model.vocoder.", LILY_COMP_VOCODER},
        {"cond_stage_models.0.vae.encoder.", LILY_COMP_COND_VAE_ENCODER},
        {"cond_stage_models.0.vae.decoder.", LILY_COMP_COND_VAE_DECODER},
        {"cond_stage_models.0.vae.quant_conv.", LILY_COMP_COND_VAE_QUANT},
        {"cond_stage_models.0.vae.post_quant_conv.", LILY_COMP_COND_VAE_QUANT},
        {"cond_stage_models.0.vae.vocoder.", LILY_COMP_COND_VAE_VOCODER},
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (starts(name, prefixes[i].prefix)) return prefixes[i].comp;
    static const char *const buffers[] = {
        "scale_factor", "logvar", "betas", "alphas_cumprod", "alphas_cumprod_prev",
        "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod",
        "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
        "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    };
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        if (strcmp(name, buffers[i]) == 0) return LILY_COMP_DDPM_BUFFERS;
    return LILY_COMP_UNKNOWN;
}
