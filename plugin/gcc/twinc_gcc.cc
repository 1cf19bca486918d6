/*
 * twinc_gcc.cc — the GCC plugin: `gcc -fplugin=twinc.so ...` writes the twins
 * of every `#pragma aad` function of the file it compiles.
 *
 *   -fplugin=PATH/twinc.so               load it (GCC 12, the version it was built for)
 *   -fplugin-arg-twinc-out=DIR           where bs.c's twins go: DIR/bs.twin.c, DIR/bs.twin.h
 *                                        (default: the object's folder, from -dumpdir;
 *                                        the current folder when GCC was given none)
 *   -fplugin-arg-twinc-sync              run the generator after the compile instead of
 *                                        alongside it (same result; for timing and debugging)
 *
 * What it does, in compiler order:
 *   PLUGIN_PRAGMAS      registers `#pragma aad` (clauses and all), so builds with
 *                       -Wall -Werror -Wunknown-pragmas stay clean;
 *   plugin_init         if a line of the main file reads `#pragma aad`, starts the
 *                       generator on that file at once (twinc_plugin.c: a process
 *                       running alongside GCC's whole compile), with the
 *                       -I/-D/-U/-include/-std/... options GCC itself was given,
 *                       read back from save_decoded_options;
 *   the pragma handler  confirms it: a `#pragma aad` that the preprocessor keeps,
 *                       in the main file (and starts the generator if the quick
 *                       look missed it);
 *   PLUGIN_FINISH_UNIT  waits for the generator and re-reports each of its
 *                       diagnostics with error_at()/inform() at the GCC location of
 *                       the same file:line:col, so the compile fails like any other
 *                       (PLUGIN_FINISH does the same when GCC skips FINISH_UNIT,
 *                       e.g. under -fsyntax-only).
 * A file without `#pragma aad` costs nothing: the generator is never loaded.
 * When GCC itself reported errors, the generator's are dropped (they would
 * repeat them), and so is the work of a start the handler never confirmed.
 */
#include "gcc-plugin.h"
#include "plugin-version.h"

#include "c-family/c-pragma.h"
#include "diagnostic.h"
#include "input.h"
#include "langhooks.h"
#include "opts.h"
#include "toplev.h"
#include "tree.h"

#include "../twinc_plugin.h"

int plugin_is_GPL_compatible; /* twinc is MIT-licensed, which is GPL-compatible */

static struct {
    const char *name;     /* the plugin's name as GCC knows it, for messages */
    const char *out_dir;  /* -fplugin-arg-twinc-out=DIR, or NULL */
    bool sync;
    bool is_c;            /* cc1, not cc1plus */
    bool seen;            /* a #pragma aad in the main file */
    TpJob *job;           /* the generator, once started */
    bool done;
} g;

/* ---- the options GCC was given, as flags for the generator's parse ---- */

/* Options that change what the preprocessor sees; passed on as GCC spelled them. */
static const char *const parse_options[] = {
    "-I", "-D", "-U", "-iquote", "-isystem", "-idirafter", "-include", "-imacros",
    "-isysroot", "--sysroot=", "-nostdinc", "-undef", "-ansi", "-O", "-Os", "-Ofast",
    "-Og", "-m32", "-m64", "-ffast-math", "-fsigned-char", "-funsigned-char",
};

static bool is_parse_option(const char *text)
{
    if (!strncmp(text, "-std=", 5))
        return true;
    for (size_t i = 0; i < sizeof parse_options / sizeof *parse_options; i++)
        if (!strcmp(text, parse_options[i]))
            return true;
    return false;
}

static void gcc_flags(TpArgs *out)
{
    for (unsigned i = 0; i < save_decoded_options_count; i++) {
        const cl_decoded_option *o = &save_decoded_options[i];
        if (o->opt_index >= cl_options_count || !is_parse_option(cl_options[o->opt_index].opt_text))
            continue;
        for (size_t k = 0; k < o->canonical_option_num_elements; k++)
            tp_args_add(out, o->canonical_option[k]);
    }
}

static bool has_option(size_t opt_index)
{
    for (unsigned i = 0; i < save_decoded_options_count; i++)
        if (save_decoded_options[i].opt_index == opt_index)
            return true;
    return false;
}

/* The file cc1 compiles: main_input_filename once GCC has set it, and the
 * command line's input before (plugin_init runs before that). */
static const char *input_file(void)
{
    if (main_input_filename)
        return main_input_filename;
    for (unsigned i = 0; i < save_decoded_options_count; i++)
        if (save_decoded_options[i].opt_index == OPT_SPECIAL_input_file)
            return save_decoded_options[i].arg;
    return NULL;
}

/* Where the twins go: the plugin argument, else next to the object. */
static char *out_dir(void)
{
    if (g.out_dir)
        return xstrdup(g.out_dir);
    /* -dumpdir is "obj/dir/" for -c -o obj/dir/x.o and "dir/prog-" when linking;
       "/dev/" for -o /dev/null, which is no place for twins */
    if (dump_dir_name && strchr(dump_dir_name, '/') && strcmp(dump_dir_name, "/dev/"))
        return tp_dirname(dump_dir_name);
    return xstrdup(".");
}

/* ---- #pragma aad ---- */

static void start_job(void)
{
    TpArgs flags = {NULL, 0, 0};
    gcc_flags(&flags);
    char *dir = out_dir();
    g.job = tp_start(input_file(), dir, &flags, !g.sync);
    free(dir);
    tp_args_free(&flags);
}

/* The generator is slower to start than cc1 (libclang and LLVM take ~15 ms to
 * load), so a file that visibly has `#pragma aad` gets it started right from
 * plugin_init, ahead of GCC's own initialisation. */
static void start_early(void)
{
    const char *in = input_file();
    if (in && g.is_c && !g.sync && !flag_preprocess_only && !has_option(OPT_fpreprocessed) &&
        tp_file_has_pragma(in))
        start_job();
}

/* The clauses are the generator's business (it reports a bad one at its
 * column); GCC skips the rest of the line after the handler returns. */
static void handle_pragma_aad(cpp_reader *)
{
    tree value;
    location_t loc = UNKNOWN_LOCATION;
    pragma_lex(&value, &loc);
    const line_map_ordinary *map = NULL;
    linemap_resolve_location(line_table, loc, LRK_MACRO_EXPANSION_POINT, &map);
    if (!map || !MAIN_FILE_P(map) || g.seen)
        return;
    g.seen = true;
    if (!g.is_c) {
        warning_at(loc, 0, "%s: %<#pragma aad%> works in C files only; no twins for this file", g.name);
    } else if (has_option(OPT_fpreprocessed)) {
        /* -save-temps, distcc: the flags and the source are gone, and libclang
           cannot read GCC's preprocessed glibc headers; never leave stale twins */
        error_at(loc, "%s: cannot write twins from preprocessed input; compile the %<.c%> file "
                      "directly (no %<-save-temps%>) or use the twinc command", g.name);
        g.is_c = false;
    } else if (!g.job && !g.sync) {
        start_job();
    }
}

static void register_pragmas(void *, void *) { c_register_pragma(NULL, "aad", handle_pragma_aad); }

/* ---- diagnostics back at GCC locations ---- */

/* The GCC location of file:line:col, or UNKNOWN_LOCATION if GCC never read
 * that file or the position does not round-trip. */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static location_t gcc_location(const char *file, int line, int col)
{
    const line_map_ordinary *best = NULL;
    const char *base = base_name(file);
    for (unsigned i = 0; i < LINEMAPS_ORDINARY_USED(line_table); i++) {
        const line_map_ordinary *m = LINEMAPS_ORDINARY_MAP_AT(line_table, i);
        const char *name = ORDINARY_MAP_FILE_NAME(m);
        if (!name || ORDINARY_MAP_STARTING_LINE_NUMBER(m) > (linenum_type)line || strcmp(base_name(name), base))
            continue;
        if (best && !strcmp(ORDINARY_MAP_FILE_NAME(best), name))
            best = m; /* a later map of the same file starts closer to the line */
        else if (tp_same_file(name, file))
            best = m;
    }
    if (!best)
        return UNKNOWN_LOCATION;
    for (int c = col; c >= 0; c = c > 0 ? 0 : -1) {
        location_t loc = linemap_position_for_line_and_column(line_table, best, line, (unsigned)c);
        expanded_location e = expand_location(loc);
        if (e.file && e.line == line && e.column == c)
            return loc;
    }
    return UNKNOWN_LOCATION;
}

static void report(const TpDiag *d)
{
    location_t loc = d->file ? gcc_location(d->file, d->line, d->col) : UNKNOWN_LOCATION;
    if (loc != UNKNOWN_LOCATION) {
        if (d->is_error)
            error_at(loc, "%s", d->msg);
        else
            inform(loc, "%s", d->msg);
    } else if (d->file) {
        if (d->is_error)
            error_at(UNKNOWN_LOCATION, "%s:%d:%d: %s", d->file, d->line, d->col, d->msg);
        else
            inform(UNKNOWN_LOCATION, "%s:%d:%d: %s", d->file, d->line, d->col, d->msg);
    } else if (d->is_error) {
        error_at(UNKNOWN_LOCATION, "twinc: %s", d->msg);
    } else {
        inform(UNKNOWN_LOCATION, "twinc: %s", d->msg);
    }
}

static void finish(void *, void *)
{
    if (g.done)
        return;
    g.done = true;
    if (g.seen && g.is_c && !g.job && !seen_error())
        start_job(); /* -fplugin-arg-twinc-sync */
    if (!g.job)
        return;
    tp_wait(g.job);
    if (g.seen && !seen_error())
        for (int i = 0; i < tp_ndiags(g.job); i++)
            report(tp_diag(g.job, i));
    tp_free(g.job);
    g.job = NULL;
}

/* ---- plugin entry ---- */

static struct plugin_info info = {
    TWINC_PLUGIN_VERSION,
    "twinc: writes the batched primal, tangent and adjoint twins of #pragma aad functions.\n"
    "  -fplugin-arg-twinc-out=DIR  write FILE.twin.c and FILE.twin.h to DIR (default: the object's folder)\n"
    "  -fplugin-arg-twinc-sync     generate after the compile, not alongside it",
};

int plugin_init(struct plugin_name_args *args, struct plugin_gcc_version *version)
{
    g.name = args->base_name;
    if (!plugin_default_version_check(version, &gcc_version)) {
        error("%s: built for GCC %s, not for this GCC %s; rebuild the plugin", g.name, gcc_version.basever,
              version->basever);
        return 1;
    }
    for (int i = 0; i < args->argc; i++) {
        const char *key = args->argv[i].key, *value = args->argv[i].value;
        if (!strcmp(key, "out") && value && *value) {
            g.out_dir = value;
        } else if (!strcmp(key, "sync") && !value) {
            g.sync = true;
        } else {
            error("%s: unknown plugin argument %qs (known: %<out=DIR%>, %<sync%>)", g.name, key);
            return 1;
        }
    }
    /* "GNU C17", "GNU C2X", ...; not "GNU C++17" */
    g.is_c = lang_hooks.name && !strncmp(lang_hooks.name, "GNU C", 5) && lang_hooks.name[5] != '+';
    register_callback(g.name, PLUGIN_INFO, NULL, &info);
    register_callback(g.name, PLUGIN_PRAGMAS, register_pragmas, NULL);
    register_callback(g.name, PLUGIN_FINISH_UNIT, finish, NULL);
    register_callback(g.name, PLUGIN_FINISH, finish, NULL);
    start_early();
    return 0;
}
