/* tests/weights/test-config.c - the model config: AudioSR's basic numbers (spec.md section 4),
 * AudioSR's YAML layout (shared/audiosr/tiny-a.yaml), the YAML Lily writes, validation, and
 * errors that point at file:line:column. */
#include <stdio.h>
#include <string.h>

#include "common/test-util.h"
#include "config/model-config.h"
#include "weights-test.h"

/* The built-in basic config holds spec.md section 4's numbers and validates. */
static void test_basic(void)
{
    LilyContext *ctx = wt_context();
    LilyModelConfig c;
    lily_model_config_basic(&c);
    g_assert_cmpint(lily_model_config_validate(ctx, &c), ==, LILY_OK);
    g_assert_cmpint(c.unet.in_channels, ==, 32);
    g_assert_cmpint(c.unet.model_channels, ==, 128);
    g_assert_cmpint(c.unet.n_levels, ==, 4);
    g_assert_cmpint(c.unet.channel_mult[3], ==, 5);
    g_assert_cmpint(c.unet.time_embed_dim, ==, 512);
    g_assert_cmpint(c.unet.num_head_channels, ==, 32);
    g_assert_cmpint(c.unet.extra_sa_layer, ==, 1);
    g_assert_cmpint(c.vae.ch_mult[3], ==, 8);
    g_assert_cmpint(c.vae.z_channels, ==, 16);
    g_assert_cmpint(c.vocoder.upsample_initial_channel, ==, 1536);
    g_assert_cmpint(c.vocoder.upsample_kernel_sizes[0], ==, 12);
    g_assert_cmpint(c.vocoder.resblock_kernel_sizes[3], ==, 15);
    g_assert_cmpint(c.vocoder.resblock_dilation_sizes[2][2], ==, 5);
    g_assert_cmpint(c.diffusion.timesteps, ==, 1000);
    g_assert_cmpstr(c.diffusion.beta_schedule, ==, "cosine");
    g_assert_cmpstr(c.diffusion.parameterization, ==, "v");
    g_assert_cmpfloat(c.diffusion.unconditional_value, ==, -11.4981f);
    g_assert_cmpfloat(c.diffusion.scale_factor, ==, 1.0f);
    lily_context_free(ctx);
}

/* tiny-a.yaml parses to tiny-a's widths, with the vocoder from vocoder_48k and the condition
 * VAE from cond_stage_config, and validates. */
static void test_parse_tiny_a(void)
{
    LilyContext *ctx = wt_context();
    char *path = lt_ref_path("tiny-a.yaml");
    LilyModelConfig c;
    g_assert_cmpint(lily_model_config_load(ctx, path, &c), ==, LILY_OK);
    g_assert_cmpint(lily_model_config_validate(ctx, &c), ==, LILY_OK);
    g_assert_cmpint(c.unet.model_channels, ==, 32);
    g_assert_cmpint(c.unet.channel_mult[0], ==, 1);
    g_assert_cmpint(c.unet.channel_mult[3], ==, 2);
    g_assert_cmpint(c.unet.num_heads, ==, -1);
    g_assert_cmpint(c.unet.time_embed_dim, ==, 128);
    g_assert_cmpint(c.vae.ch, ==, 32);
    g_assert_cmpint(c.cond_vae.ch, ==, 32);
    g_assert_cmpint(c.cond_vae.ch_mult[3], ==, 2);
    g_assert_cmpint(c.vocoder.upsample_initial_channel, ==, 64);
    g_assert_cmpint(c.vocoder.n_resblocks, ==, 4);
    g_assert_cmpint(c.vocoder.n_dilations, ==, 3);
    g_assert_cmpint(c.vocoder.resblock_type, ==, 1);
    g_assert_cmpfloat(c.diffusion.linear_start, ==, 0.0015);
    g_assert_cmpfloat(c.diffusion.unconditional_prob_cfg, ==, 0.1);
    g_assert_cmpint(c.diffusion.latent_channels, ==, 16);
    g_free(path);
    lily_context_free(ctx);
}

/* The YAML Lily writes parses back to the same config (scale_factor and every list
 * included), and writing that again gives the same text. */
static void test_yaml_roundtrip(void)
{
    LilyContext *ctx = wt_context();
    char *path = lt_ref_path("tiny-a.yaml");
    LilyModelConfig a, b, basic, basic2;
    g_assert_cmpint(lily_model_config_load(ctx, path, &a), ==, LILY_OK);
    a.diffusion.scale_factor = 0.7f;
    a.diffusion.linear_end = 0.0195000001;
    a.cond_vae.ch = 64; /* a condition VAE unlike the first stage */
    char *y1 = NULL, *y2 = NULL;
    g_assert_cmpint(lily_model_config_to_yaml(ctx, &a, &y1), ==, LILY_OK);
    g_assert_cmpint(lily_model_config_parse(ctx, y1, strlen(y1), "roundtrip", &b), ==, LILY_OK);
    g_assert_true(lily_model_config_equal(&a, &b));
    g_assert_cmpfloat(b.diffusion.scale_factor, ==, 0.7f);
    g_assert_cmpint(b.cond_vae.ch, ==, 64);
    g_assert_cmpint(lily_model_config_to_yaml(ctx, &b, &y2), ==, LILY_OK);
    g_assert_cmpstr(y1, ==, y2);
    lily_free(y1);
    lily_free(y2);
    lily_model_config_basic(&basic);
    g_assert_cmpint(lily_model_config_to_yaml(ctx, &basic, &y1), ==, LILY_OK);
    g_test_message("basic config as YAML: %zu bytes", strlen(y1));
    g_assert_cmpint(lily_model_config_parse(ctx, y1, strlen(y1), "basic", &basic2), ==, LILY_OK);
    g_assert_true(lily_model_config_equal(&basic, &basic2));
    g_assert_false(lily_model_config_equal(&basic, &a));
    lily_free(y1);
    g_free(path);
    lily_context_free(ctx);
}

/* Type errors and YAML syntax errors carry file:line:column and the key path. */
static void test_errors_point_at_the_line(void)
{
    LilyContext *ctx = wt_context();
    LilyModelConfig c;
    const char *bad_type = "model:\n  params:\n    unet_config:\n      params:\n"
                           "        model_channels: lots\n";
    g_assert_cmpint(lily_model_config_parse(ctx, bad_type, strlen(bad_type), "x.yaml", &c), ==,
                    LILY_ERR_INVALID_ARGUMENT);
    g_test_message("%s", lily_context_error(ctx));
    g_assert_nonnull(strstr(lily_context_error(ctx), "x.yaml:5:25: model.params.unet_config.params.model_channels: expected an integer, found 'lots'"));
    const char *bad_list = "vocoder_48k:\n  upsample_rates: 6\n";
    g_assert_cmpint(lily_model_config_parse(ctx, bad_list, strlen(bad_list), "y.yaml", &c), ==,
                    LILY_ERR_INVALID_ARGUMENT);
    g_test_message("%s", lily_context_error(ctx));
    g_assert_nonnull(strstr(lily_context_error(ctx), "y.yaml:2:19: vocoder_48k.upsample_rates: expected a list"));
    const char *syntax = "model:\n  params: [1, 2\n";
    g_assert_cmpint(lily_model_config_parse(ctx, syntax, strlen(syntax), "z.yaml", &c), ==,
                    LILY_ERR_INVALID_ARGUMENT);
    g_test_message("%s", lily_context_error(ctx));
    g_assert_nonnull(strstr(lily_context_error(ctx), "z.yaml:3:1: YAML syntax error"));
    const char *section = "model: 5\n";
    g_assert_cmpint(lily_model_config_parse(ctx, section, strlen(section), "s.yaml", &c), ==,
                    LILY_ERR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(lily_context_error(ctx), "s.yaml:1:8: model: expected a mapping"));
    g_assert_cmpint(lily_model_config_load(ctx, "/nonexistent/cfg.yaml", &c), ==, LILY_ERR_IO);
    g_assert_nonnull(strstr(lily_context_error(ctx), "/nonexistent/cfg.yaml"));
    lily_context_free(ctx);
}

/* A config that parses but cannot describe a model is refused naming the key. */
static void test_validate(void)
{
    LilyContext *ctx = wt_context();
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"model:\n  params:\n    unet_config:\n      params:\n        model_channels: 100\n",
         "must be a positive multiple of 32"},
        {"vocoder_48k:\n  upsample_rates: [6, 5, 4, 2, 3]\n", "multiply to 720, not the hop 480"},
        {"model:\n  params:\n    beta_schedule: quadratic\n", "beta_schedule 'quadratic'"},
        {"model:\n  params:\n    unet_config:\n      params:\n        in_channels: 16\n",
         "in_channels = 16 must be the latent (16) plus the concatenated condition latent (16)"},
        {"preprocessing:\n  audio:\n    sampling_rate: 44100\n", "Lily's front end is fixed"},
        {"model:\n  params:\n    first_stage_config:\n      params:\n        ddconfig:\n"
         "          double_z: false\n", "double_z must be true"},
        {"vocoder_48k:\n  resblock_kernel_sizes: [3, 7, 11]\n  resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5]]\n",
         "has 2 entries but resblock_kernel_sizes has 3"},
        {"model:\n  params:\n    unet_config:\n      params:\n        use_spatial_transformer: false\n",
         "must be true"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        LilyModelConfig c;
        LilyStatus st = lily_model_config_parse(ctx, cases[i].yaml, strlen(cases[i].yaml), "v.yaml", &c);
        if (st == LILY_OK) st = lily_model_config_validate(ctx, &c);
        g_test_message("%s", lily_context_error(ctx));
        g_assert_cmpint(st, ==, LILY_ERR_INVALID_ARGUMENT);
        g_assert_nonnull(strstr(lily_context_error(ctx), cases[i].msg));
    }
    lily_context_free(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/config/basic", test_basic);
    g_test_add_func("/lily/config/parse-tiny-a", test_parse_tiny_a);
    g_test_add_func("/lily/config/yaml-roundtrip", test_yaml_roundtrip);
    g_test_add_func("/lily/config/errors-point-at-the-line", test_errors_point_at_the_line);
    g_test_add_func("/lily/config/validate", test_validate);
    return g_test_run();
}
