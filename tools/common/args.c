/* tools/common/args.c - the option parser of args.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <lily/lily.h>

#include "args.h"

void lily_cli_usage(const LilyCliSpec *spec, FILE *f)
{
    fprintf(f, "Usage: %s %s\n", spec->prog, spec->usage);
    if (spec->summary) fprintf(f, "\n%s\n", spec->summary);
    fprintf(f, "\nOptions:\n");
    for (int i = 0; i < spec->n_options; i++) {
        const LilyCliOption *o = &spec->options[i];
        char left[96];
        int n = 0;
        if (o->short_name) n = snprintf(left, sizeof left, "-%c, ", o->short_name);
        else n = snprintf(left, sizeof left, "    ");
        snprintf(left + n, sizeof left - (size_t)n, "--%s%s%s", o->name,
                 o->type == LILY_CLI_FLAG ? "" : " ", o->type == LILY_CLI_FLAG ? "" : (o->metavar ? o->metavar : "VALUE"));
        fprintf(f, "  %-30s %s\n", left, o->help ? o->help : "");
    }
    fprintf(f, "  %-30s %s\n", "-h, --help", "show this help and exit");
    fprintf(f, "  %-30s %s\n", "    --version", "show the version and exit");
    if (spec->epilog) fprintf(f, "\n%s\n", spec->epilog);
}

static const LilyCliOption *find_long(const LilyCliSpec *spec, const char *name, size_t len)
{
    for (int i = 0; i < spec->n_options; i++)
        if (strlen(spec->options[i].name) == len && strncmp(spec->options[i].name, name, len) == 0)
            return &spec->options[i];
    return NULL;
}

static const LilyCliOption *find_short(const LilyCliSpec *spec, char c)
{
    for (int i = 0; i < spec->n_options; i++)
        if (spec->options[i].short_name == c) return &spec->options[i];
    return NULL;
}

static int set_value(const LilyCliSpec *spec, const LilyCliOption *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case LILY_CLI_FLAG: *(int *)o->value = 1; return LILY_CLI_OK;
    case LILY_CLI_STRING: *(const char **)o->value = v; return LILY_CLI_OK;
    case LILY_CLI_INT: {
        long x = strtol(v, &end, 10);
        if (end == v || *end || errno || x < INT32_MIN || x > INT32_MAX) break;
        *(int *)o->value = (int)x;
        return LILY_CLI_OK;
    }
    case LILY_CLI_U64: {
        if (v[0] == '-') break;
        unsigned long long x = strtoull(v, &end, 0);
        if (end == v || *end || errno) break;
        *(uint64_t *)o->value = (uint64_t)x;
        return LILY_CLI_OK;
    }
    case LILY_CLI_DOUBLE: {
        double x = strtod(v, &end);
        if (end == v || *end || errno) break;
        *(double *)o->value = x;
        return LILY_CLI_OK;
    }
    }
    fprintf(stderr, "%s: --%s expects %s, got '%s' (see --help)\n", spec->prog, o->name,
            o->type == LILY_CLI_DOUBLE ? "a number" : "an integer", v);
    return LILY_CLI_ERROR;
}

int lily_cli_parse(const LilyCliSpec *spec, int argc, char **argv, const char **pos, int *n_pos)
{
    *n_pos = 0;
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const LilyCliOption *o = NULL;
        const char *value = NULL;
        if (!only_positional && strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (!only_positional && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            lily_cli_usage(spec, stdout);
            return LILY_CLI_EXIT;
        }
        if (!only_positional && strcmp(a, "--version") == 0) {
            printf("%s (Lily) %s\n", spec->prog, LILY_VERSION_STRING);
            return LILY_CLI_EXIT;
        }
        if (!only_positional && a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            o = find_long(spec, a + 2, len);
            if (!o) {
                fprintf(stderr, "%s: unknown option '%.*s' (see --help)\n", spec->prog,
                        (int)(len + 2), a);
                return LILY_CLI_ERROR;
            }
            if (eq) {
                if (o->type == LILY_CLI_FLAG) {
                    fprintf(stderr, "%s: --%s takes no value\n", spec->prog, o->name);
                    return LILY_CLI_ERROR;
                }
                value = eq + 1;
            }
        } else if (!only_positional && a[0] == '-' && a[1] && a[2] == '\0') {
            o = find_short(spec, a[1]);
            if (!o) {
                fprintf(stderr, "%s: unknown option '%s' (see --help)\n", spec->prog, a);
                return LILY_CLI_ERROR;
            }
        } else {
            if (*n_pos >= spec->max_positional) {
                fprintf(stderr, "%s: unexpected argument '%s'\nUsage: %s %s\n", spec->prog, a,
                        spec->prog, spec->usage);
                return LILY_CLI_ERROR;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        if (o->type != LILY_CLI_FLAG && !value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: --%s needs a value (%s)\n", spec->prog, o->name,
                        o->metavar ? o->metavar : "VALUE");
                return LILY_CLI_ERROR;
            }
            value = argv[++i];
        }
        if (set_value(spec, o, value) != LILY_CLI_OK) return LILY_CLI_ERROR;
    }
    if (*n_pos < spec->min_positional) {
        fprintf(stderr, "%s: missing arguments\nUsage: %s %s\n(see --help)\n", spec->prog, spec->prog,
                spec->usage);
        return LILY_CLI_ERROR;
    }
    return LILY_CLI_OK;
}
