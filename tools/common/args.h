/* tools/common/args.h - command-line parsing shared by the Lily tools.
 *
 * Each tool describes its options in a table; the parser handles `--name value`,
 * `--name=value`, `-x value`, flags, `--` and `--help`/`--version`, and prints usage text made
 * from the same table, so a tool's help cannot drift from what it accepts. Errors name the
 * option and say what was expected. */
#ifndef LILY_TOOLS_COMMON_ARGS_H
#define LILY_TOOLS_COMMON_ARGS_H

#include <stdint.h>
#include <stdio.h>

typedef enum LilyCliArgType {
    LILY_CLI_FLAG = 0, /* int *: set to 1 */
    LILY_CLI_INT,      /* int * */
    LILY_CLI_U64,      /* uint64_t * */
    LILY_CLI_DOUBLE,   /* double * */
    LILY_CLI_STRING,   /* const char ** (points into argv) */
} LilyCliArgType;

typedef struct LilyCliOption {
    const char *name;     /* long name without dashes: "dtype" */
    char short_name;      /* 'd', or 0 */
    LilyCliArgType type;
    void *value;
    const char *metavar;  /* "f32|bf16|f16"; NULL for flags */
    const char *help;     /* one line */
} LilyCliOption;

typedef struct LilyCliSpec {
    const char *prog;     /* "lily-convert" */
    const char *usage;    /* "IN OUT [options]" */
    const char *summary;  /* what the tool does, a few lines */
    const LilyCliOption *options;
    int n_options;
    int min_positional, max_positional;
    const char *epilog;   /* examples, notes; may be NULL */
} LilyCliSpec;

enum {
    LILY_CLI_OK = 0,      /* go on */
    LILY_CLI_EXIT = 1,    /* --help or --version was printed: exit 0 */
    LILY_CLI_ERROR = 2,   /* a usage error was printed to stderr: exit 2 */
};

/* Parses argv[1..argc). Positional arguments are stored, in order, in pos[0..max_positional)
 * and counted in *n_pos. */
int lily_cli_parse(const LilyCliSpec *spec, int argc, char **argv, const char **pos, int *n_pos);
void lily_cli_usage(const LilyCliSpec *spec, FILE *f);

#endif /* LILY_TOOLS_COMMON_ARGS_H */
