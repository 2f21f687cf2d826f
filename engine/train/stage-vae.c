/* train/stage-vae.c - placeholder */
#include "train/trainer-impl.h"
static bool tr(const char *name) { (void)name; return false; }
static LilyStatus init(LilyTrainer *t, const LilyWeights *w) { (void)w; return lily_error(t->ctx, LILY_ERR_UNSUPPORTED, "not yet"); }
static LilyStatus step(LilyTrainer *t, LilyTrainStepInfo *i) { (void)i; return lily_error(t->ctx, LILY_ERR_UNSUPPORTED, "not yet"); }
static LilyStatus val(LilyTrainer *t, LilyValidationInfo *i) { (void)i; return lily_error(t->ctx, LILY_ERR_UNSUPPORTED, "not yet"); }
const LilyStage lily_stage_vae = {.name = "vae", .trainable = tr, .init = init, .step = step, .validate = val};
