/*
 * check_cmd.c — `twinc check LIB.so`: load a library of twins and check every
 * kernel's derivatives, the command-line face of runtime/gradcheck.c.
 *
 * For each kernel (or the ones named with --kernel) the checker runs at a base
 * point — 1.0 for every double input and 1 for every integer, overridden with
 * --at name=value,... — and at N-1 random points near it, all in batches of
 * lanes (see twinc_check.h for what is measured).  The report is for a human
 * by default: per point the inputs, the values, a table per output of
 * adjoint, finite difference, tangent and rho for every active input, the
 * dot-product error, and a PASS/FAIL line that says what failed and where;
 * per kernel a PASS/FAIL line; a summary.  --json prints the same numbers as
 * one JSON array instead, keyed by parameter name.
 *
 * Arrays: every element is reported on its own, named x[3] (in the text and
 * as JSON keys).  --at x=V sets every element, x=V0:V1:...  each element (as
 * many values as the array has elements at the point's integers), x[K]=V
 * one element; the random points move every element.
 *
 * Exit status: 0 when every kernel passes, 1 on any mismatch, non-finite
 * number or twin error, 2 on a usage error (unknown option, kernel or
 * parameter; a value that does not parse) or a library that cannot be
 * loaded.  Usage errors are found before anything is printed on stdout, so
 * stdout never holds half a report or half a JSON document.
 *
 * This file depends on the runtime only (twinc_check.h), not on the
 * generator; main.c dispatches `twinc check ...` here with argv[0] == "check".
 *
 * MIT licence — see LICENSE.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twinc_check.h"

int twinc_cmd_check(int argc, char **argv);

#define DEFAULT_POINTS 4
#define SPREAD 0.2 /* random points: +-20% of |base| (of 1e-3 if base = 0) */

static void usage(FILE *out)
{
    fputs("usage: twinc check LIB.so [--kernel NAME] [--at NAME=VALUE,...] [--points N]\n"
          "                          [--seed S] [--rtol X] [--dot-rtol X] [--lane-stride L]\n"
          "                          [--element-stride E] [--json]\n"
          "\n"
          "Check every kernel of LIB.so, a shared library built from twinc-generated\n"
          "*.twin.c files: the adjoint and the tangent twin against central finite\n"
          "differences of the primal twin, and against each other by the dot-product\n"
          "test, at a base point and at random points near it.  All points of a kernel\n"
          "are evaluated together as lanes of the batched twins.\n"
          "\n"
          "options:\n"
          "  --kernel NAME        check only kernel NAME (may be repeated)\n"
          "  --at NAME=VALUE,...  set input NAME of the base point (may be repeated);\n"
          "                       inputs not set are 1.0 (double) or 1 (integer); a\n"
          "                       NAME that only some of the kernels have applies to those.\n"
          "                       Arrays (const double x[n], and the initial values of\n"
          "                       in/out arrays double v[n]):\n"
          "                         x=0.5            every element\n"
          "                         x=0.1:0.2:0.3    one value per element, separated by\n"
          "                                          ':', as many as x has elements (its\n"
          "                                          length at the integers given, e.g. n=3)\n"
          "                         'x[2]=0.7'       element 2 (counting from 0; quote\n"
          "                                          the brackets from the shell)\n"
          "                       later settings override earlier ones\n"
          "  --points N           points per kernel: the base point and N-1 random ones\n"
          "                       (default 4).  A random point moves every double input\n"
          "                       (every array element) not declared uniform(...) by a\n"
          "                       uniformly random amount in [-20%, +20%] of\n"
          "                       |base value| (of 1e-3 where it is 0); integers, and so array\n"
          "                       lengths, and uniform inputs keep their base value\n"
          "  --seed S             seed of the random points and test directions\n"
          "                       (default 1; the same seed gives the same points)\n"
          "  --rtol X             bound on rho = |ad - fd| / max(1, |ad| + |fd|), for the\n"
          "                       adjoint and the tangent derivative (default 1e-6); where\n"
          "                       finite differences are noisier than that, the bound is\n"
          "                       10 times their estimated error, at most 1e-4\n"
          "  --dot-rtol X         bound on the dot-product test's relative error\n"
          "                       |<tangent(xd), yb> - <xd, adjoint(yb)>| (default 1e-10)\n"
          "  --lane-stride L      pass per-lane arguments L lanes' worth apart, with NaN in\n"
          "                       between (default 1)\n"
          "  --element-stride E   pass array elements E apart, with NaN in between\n"
          "                       (default 1)\n"
          "  --json               print one JSON array, an object per kernel and point\n"
          "                       (array elements keyed \"x[3]\"; with arrays, their\n"
          "                       element counts under \"lengths\")\n"
          "  -h, --help           print this help\n"
          "\n"
          "The base point is, per input: its --at value, else the value in the kernel's\n"
          "`#pragma aad check(name = value, ...)`, else 1.\n"
          "Finite differences are central, with step h = cbrt(DBL_EPSILON) * max(|x|, s),\n"
          "s = min(1, |base value|) (1 where the base value is 0);\n"
          "their error is estimated by comparison with step h/2.  Where an output is not\n"
          "smooth within a step of the point (a branch or a kink) and the central\n"
          "difference disagrees, the left or right one-sided difference (Richardson-\n"
          "extrapolated from h and h/2) that matches the adjoint is used instead (marked\n"
          "*): AD follows one side of a branch.  The values computed by the tangent and\n"
          "adjoint twins and by your own C function must agree with the primal twin's\n"
          "(to 1e-12).  Arrays are checked element by element: each element of an\n"
          "active input array is an input, named x[3] in the report and the JSON; an\n"
          "in/out array's initial elements are inputs and its final ones outputs.\n"
          "\n"
          "Exit status: 0 if every kernel passes; 1 on a mismatch, a value that is not\n"
          "finite, or a twin error; 2 on a usage error or a library that cannot be\n"
          "loaded.\n",
          out);
}

/* ---- options ---- */

typedef struct AtItem {
    const char *name; /* points into Opts.at_text */
    const char *text;
    long elem;        /* NAME[K]=...: K; -1 without an index */
    int used;
} AtItem;

typedef struct Opts {
    const char *lib;
    const char **kernels;
    int nkernels;
    char **at_text; /* owned copies of the --at arguments, split in place */
    int nat_text;
    AtItem *at;
    int nat;
    int points;
    unsigned long long seed;
    double rtol, dot_rtol;
    int lane_stride;
    int element_stride;
    int json;
} Opts;

static void free_opts_at(Opts *o)
{
    for (int i = 0; i < o->nat_text; i++)
        free(o->at_text[i]);
    free(o->at_text);
    free(o->at);
}

static void opts_free(Opts *o)
{
    free_opts_at(o);
    free(o->kernels);
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("twinc check: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(try 'twinc check --help')\n", stderr);
    return 2;
}

/* "--name VALUE" or "--name=VALUE": the value, advancing *i; NULL if absent. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *matched)
{
    size_t len = strlen(name);
    const char *a = argv[*i];
    *matched = 0;
    if (strncmp(a, name, len) != 0)
        return NULL;
    if (a[len] == '=') {
        *matched = 1;
        return a + len + 1;
    }
    if (a[len] != '\0')
        return NULL;
    *matched = 1;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE)
        return 0;
    *out = v;
    return 1;
}

static int parse_ull(const char *s, unsigned long long *out)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '-' || *s == '\0')
        return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (*end != '\0' || errno == ERANGE)
        return 0;
    *out = v;
    return 1;
}

static int parse_ll(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (end == s || *end != '\0' || errno == ERANGE)
        return 0;
    *out = v;
    return 1;
}

/* Split "a=1,b=2" (an owned copy) into AtItems. */
static int add_at(Opts *o, const char *arg)
{
    size_t len = strlen(arg);
    char *copy = malloc(len + 1);
    char **texts = realloc(o->at_text, (size_t)(o->nat_text + 1) * sizeof *texts);
    if (texts)
        o->at_text = texts;
    if (!copy || !texts) {
        free(copy);
        fputs("twinc check: out of memory\n", stderr);
        return 2;
    }
    memcpy(copy, arg, len + 1);
    o->at_text[o->nat_text++] = copy;
    for (char *item = copy; item;) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = '\0';
        char *eq = strchr(item, '=');
        if (!eq || eq == item || eq[1] == '\0')
            return usage_error("--at: '%s' is not NAME=VALUE", item);
        *eq = '\0';
        long elem = -1;
        char *open = strchr(item, '[');
        if (open) { /* NAME[K] */
            char *end;
            errno = 0;
            elem = strtol(open + 1, &end, 10);
            if (open == item || end == open + 1 || *end != ']' || end[1] != '\0' || elem < 0 ||
                errno == ERANGE || !(open[1] >= '0' && open[1] <= '9')) {
                *eq = '=';
                return usage_error("--at: '%s' is not NAME=VALUE or NAME[INDEX]=VALUE", item);
            }
            *open = '\0';
        }
        AtItem *at = realloc(o->at, (size_t)(o->nat + 1) * sizeof *at);
        if (!at) {
            fputs("twinc check: out of memory\n", stderr);
            return 2;
        }
        o->at = at;
        o->at[o->nat++] = (AtItem){item, eq + 1, elem, 0};
        item = comma ? comma + 1 : NULL;
    }
    return 0;
}

static int parse_args(int argc, char **argv, Opts *o)
{
    twinc_check_options def; /* the library's defaults are the command's */
    twinc_check_options_init(&def);
    o->points = DEFAULT_POINTS;
    o->seed = def.seed;
    o->rtol = def.fd_rtol;
    o->dot_rtol = def.dot_rtol;
    o->lane_stride = def.lane_stride;
    o->element_stride = def.element_stride;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int m;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return -1;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if ((v = opt_value(argc, argv, &i, "--kernel", &m)) || m) {
            if (!v || !*v)
                return usage_error("%s needs a kernel name", "--kernel");
            const char **ks = realloc(o->kernels, (size_t)(o->nkernels + 1) * sizeof *ks);
            if (!ks) {
                fputs("twinc check: out of memory\n", stderr);
                return 2;
            }
            o->kernels = ks;
            o->kernels[o->nkernels++] = v;
        } else if ((v = opt_value(argc, argv, &i, "--at", &m)) || m) {
            if (!v)
                return usage_error("%s needs NAME=VALUE,...", "--at");
            int st = add_at(o, v);
            if (st)
                return st;
        } else if ((v = opt_value(argc, argv, &i, "--points", &m)) || m) {
            long long n;
            if (!v)
                return usage_error("%s needs a value", "--points");
            if (!parse_ll(v, &n) || n < 1 || n > (1 << 20))
                return usage_error("--points: '%s' is not a number of points (1 to 1048576)",
                                   v);
            o->points = (int)n;
        } else if ((v = opt_value(argc, argv, &i, "--lane-stride", &m)) || m) {
            long long n;
            if (!v)
                return usage_error("%s needs a value", "--lane-stride");
            if (!parse_ll(v, &n) || n < 1 || n > 64)
                return usage_error("--lane-stride: '%s' is not a stride (1 to 64)", v);
            o->lane_stride = (int)n;
        } else if ((v = opt_value(argc, argv, &i, "--element-stride", &m)) || m) {
            long long n;
            if (!v)
                return usage_error("%s needs a value", "--element-stride");
            if (!parse_ll(v, &n) || n < 1 || n > 64)
                return usage_error("--element-stride: '%s' is not a stride (1 to 64)", v);
            o->element_stride = (int)n;
        } else if ((v = opt_value(argc, argv, &i, "--seed", &m)) || m) {
            if (!v)
                return usage_error("%s needs a value", "--seed");
            if (!parse_ull(v, &o->seed))
                return usage_error("--seed: '%s' is not an unsigned integer", v);
        } else if ((v = opt_value(argc, argv, &i, "--rtol", &m)) || m) {
            if (!v)
                return usage_error("%s needs a value", "--rtol");
            if (!parse_double(v, &o->rtol) || !(o->rtol > 0) || !isfinite(o->rtol))
                return usage_error("--rtol: '%s' is not a positive number", v);
        } else if ((v = opt_value(argc, argv, &i, "--dot-rtol", &m)) || m) {
            if (!v)
                return usage_error("%s needs a value", "--dot-rtol");
            if (!parse_double(v, &o->dot_rtol) || !(o->dot_rtol > 0) || !isfinite(o->dot_rtol))
                return usage_error("--dot-rtol: '%s' is not a positive number", v);
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("unknown option '%s'", a);
        } else if (!o->lib) {
            o->lib = a;
        } else {
            return usage_error("one library at a time ('%s' is extra)", a);
        }
    }
    if (!o->lib)
        return usage_error("%s", "no library given: twinc check LIB.so");
    return 0;
}

/* ---- selecting kernels and applying --at ---- */

static void list_kernels(FILE *out, const twinc_lib *lib)
{
    int n = twinc_lib_count(lib);
    for (int i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? ", " : "", twinc_lib_kernel(lib, i)->name);
    if (n == 0)
        fputs("(none)", out);
}

/* Inputs: scalars and arrays (const double x[n]) the caller gives, and the
 * initial values of in/out arrays (double v[n]). */
static int is_input(const twinc_param *p)
{
    return p->role == TWINC_ROLE_IN || p->role == TWINC_ROLE_INOUT;
}

static void list_inputs(FILE *out, const twinc_kernel *k)
{
    int first = 1;
    for (int i = 0; i < k->nparams; i++) {
        if (!is_input(&k->params[i]))
            continue;
        fprintf(out, "%s%s", first ? "" : ", ", k->params[i].name);
        if (k->params[i].length)
            fprintf(out, "[%s]", k->params[i].length);
        first = 0;
    }
    if (first)
        fputs("(none)", out);
}

static int find_param(const twinc_kernel *k, const char *name)
{
    for (int i = 0; i < k->nparams; i++)
        if (k->params[i].name && strcmp(k->params[i].name, name) == 0)
            return i;
    return -1;
}

/* Parse an --at value for parameter p: a double into *x, an integer into
 * *ix.  0 if it does not parse or is out of range for p's C type. */
static int parse_input(const twinc_param *p, const char *text, double *x, long long *ix)
{
    long long v;
    unsigned long long u;
    switch (p->type) {
    case TWINC_T_DOUBLE:
        return parse_double(text, x);
    case TWINC_T_INT:
        if (!parse_ll(text, &v) || v < INT_MIN || v > INT_MAX)
            return 0;
        *ix = v;
        return 1;
    case TWINC_T_LONG:
        if (!parse_ll(text, &v) || v < LONG_MIN || v > LONG_MAX)
            return 0;
        *ix = v;
        return 1;
    case TWINC_T_UINT:
        if (!parse_ull(text, &u) || u > UINT_MAX)
            return 0;
        *ix = (long long)u;
        return 1;
    case TWINC_T_ULONG:
        if (!parse_ull(text, &u) || u > ULONG_MAX)
            return 0;
        *ix = (long long)u; /* modulo 2^64, as twinc_check.h says */
        return 1;
    }
    return 0;
}

/* "V0:V1:...": the number of values (each into out[k] while k < max), or
 * -1 if one does not parse. */
static long parse_list(const char *text, double *out, long max)
{
    long n = 0;
    for (const char *s = text;;) {
        const char *colon = strchr(s, ':');
        size_t len = colon ? (size_t)(colon - s) : strlen(s);
        char buf[128];
        double v;
        if (len == 0 || len >= sizeof buf)
            return -1;
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (!parse_double(buf, &v))
            return -1;
        if (out && n < max)
            out[n] = v;
        n++;
        if (!colon)
            return n;
        s = colon + 1;
    }
}

static const char *type_name(twinc_type t)
{
    switch (t) {
    case TWINC_T_DOUBLE:
        return "double";
    case TWINC_T_INT:
        return "int";
    case TWINC_T_LONG:
        return "long";
    case TWINC_T_UINT:
        return "unsigned";
    case TWINC_T_ULONG:
        return "unsigned long";
    }
    return "?";
}

/* Kernel k's integer inputs from --at (1 where not given), by parameter:
 * they fix its array lengths. */
static void kernel_ints(const Opts *o, const twinc_kernel *k, long long *ix)
{
    for (int i = 0; i < k->nparams; i++)
        ix[i] = 1;
    for (int a = 0; a < o->nat; a++) {
        int i = find_param(k, o->at[a].name);
        double x;
        if (i >= 0 && k->params[i].type != TWINC_T_DOUBLE && o->at[a].elem < 0)
            parse_input(&k->params[i], o->at[a].text, &x, &ix[i]);
    }
}

/* Every --at name must be an input of at least one selected kernel, and its
 * value must parse for every kernel that has it (an array's list must have
 * as many values as the array elements, an index must be one of them).
 * Reports and returns 2. */
static int validate_at(Opts *o, const twinc_kernel *const *ks, int nk)
{
    for (int a = 0; a < o->nat; a++) {
        AtItem *at = &o->at[a];
        for (int n = 0; n < nk; n++) {
            int i = find_param(ks[n], at->name);
            if (i < 0)
                continue;
            const twinc_param *p = &ks[n]->params[i];
            if (!is_input(p)) {
                fprintf(stderr,
                        "twinc check: --at: '%s' is an output of %s, not an input; its "
                        "inputs are: ",
                        at->name, ks[n]->name);
                list_inputs(stderr, ks[n]);
                fputc('\n', stderr);
                return 2;
            }
            double x;
            long long ix;
            if (!p->length) {
                if (at->elem >= 0 || strchr(at->text, ':')) {
                    char idx[32] = "";
                    if (at->elem >= 0)
                        snprintf(idx, sizeof idx, "[%ld]", at->elem);
                    fprintf(stderr, "twinc check: --at: %s%s=%s: %s is not an array of %s; give "
                                    "it one value\n",
                            at->name, idx, at->text, at->name, ks[n]->name);
                    return 2;
                }
                if (!parse_input(p, at->text, &x, &ix)) {
                    fprintf(stderr,
                            "twinc check: --at: %s=%s: not a valid %s value (%s of %s)\n",
                            at->name, at->text, type_name(p->type), at->name, ks[n]->name);
                    return 2;
                }
                at->used = 1;
                continue;
            }
            long count = at->elem >= 0 ? (parse_double(at->text, &x) ? 1 : -1)
                                       : parse_list(at->text, NULL, 0);
            if (count < 0) {
                fprintf(stderr,
                        "twinc check: --at: %s%s=%s: not %s (%s of %s is an array of "
                        "doubles: NAME=V for every element, NAME=V0:V1:... for each, "
                        "NAME[K]=V for element K)\n",
                        at->name, at->elem >= 0 ? "[K]" : "", at->text,
                        at->elem >= 0 ? "a double" : "a double or a list V0:V1:... of doubles",
                        at->name, ks[n]->name);
                return 2;
            }
            long long *ints = malloc((size_t)(ks[n]->nparams ? ks[n]->nparams : 1) *
                                     sizeof *ints);
            ptrdiff_t *len = malloc((size_t)(ks[n]->nparams ? ks[n]->nparams : 1) *
                                    sizeof *len);
            if (!ints || !len) {
                free(ints);
                free(len);
                fputs("twinc check: out of memory\n", stderr);
                return 2;
            }
            kernel_ints(o, ks[n], ints);
            /* lengths that cannot be computed are the checker's to report */
            ptrdiff_t m = twinc_check_array_lengths(ks[n], ints, len) == TWINC_OK ? len[i] : -1;
            free(ints);
            free(len);
            if (m >= 0 && at->elem >= m) {
                fprintf(stderr,
                        "twinc check: --at: %s[%ld]: %s of %s has %td element%s (length %s), "
                        "numbered from 0\n",
                        at->name, at->elem, at->name, ks[n]->name, m, m == 1 ? "" : "s",
                        p->length);
                return 2;
            }
            if (m >= 0 && at->elem < 0 && count > 1 && count != m) {
                fprintf(stderr,
                        "twinc check: --at: %s=%s: %ld values, but %s of %s has %td "
                        "element%s (length %s at the integers given)\n",
                        at->name, at->text, count, at->name, ks[n]->name, m, m == 1 ? "" : "s",
                        p->length);
                return 2;
            }
            at->used = 1;
        }
        if (!at->used) {
            if (nk == 1) {
                fprintf(stderr, "twinc check: --at: '%s' is not a parameter of %s; its inputs "
                                "are: ",
                        at->name, ks[0]->name);
                list_inputs(stderr, ks[0]);
                fputc('\n', stderr);
            } else {
                fprintf(stderr, "twinc check: --at: '%s' is not a parameter of any kernel; "
                                "their inputs are:\n",
                        at->name);
                for (int n = 0; n < nk; n++) {
                    fprintf(stderr, "  %s: ", ks[n]->name);
                    list_inputs(stderr, ks[n]);
                    fputc('\n', stderr);
                }
            }
            return 2;
        }
    }
    return 0;
}

/* The items that set kernel k's base point: its registry's check point
 * (`#pragma aad check(...)`, validated by the generator) first, then every
 * --at item, so that --at wins.  ko shares o's strings; free_kernel_opts. */
static int kernel_opts(const Opts *o, const twinc_kernel *k, Opts *ko)
{
    Opts def = {0};
    *ko = *o;
    ko->at = NULL;
    ko->at_text = NULL;
    ko->nat = ko->nat_text = 0;
    if (k->check_at && k->check_at[0] && add_at(&def, k->check_at) != 0) {
        fprintf(stderr, "twinc check: %s: the registry's check point '%s' does not parse\n", k->name,
                k->check_at);
        free_opts_at(&def);
        return 2;
    }
    ko->at = malloc((size_t)(def.nat + o->nat + 1) * sizeof *ko->at);
    if (!ko->at) {
        free_opts_at(&def);
        fputs("twinc check: out of memory\n", stderr);
        return 2;
    }
    for (int a = 0; a < def.nat; a++)
        ko->at[ko->nat++] = def.at[a];
    for (int a = 0; a < o->nat; a++)
        ko->at[ko->nat++] = o->at[a];
    ko->at_text = def.at_text; /* the defaults' strings now belong to ko */
    ko->nat_text = def.nat_text;
    free(def.at);
    return 0;
}


/* Set the base point of c from --at, in the order given (validated). */
static int apply_at(const Opts *o, twinc_check *c)
{
    const twinc_kernel *k = c->kernel;
    twinc_check_point *pt = &c->points[0];
    for (int a = 0; a < o->nat; a++) {
        const AtItem *at = &o->at[a];
        int i = find_param(k, at->name);
        if (i < 0)
            continue;
        int s = c->param_slot[i];
        if (!k->params[i].length) {
            parse_input(&k->params[i], at->text, &pt->x[s], &pt->ix[s]);
        } else if (at->elem >= 0) {
            if (at->elem < c->length[i])
                parse_double(at->text, &pt->x[s + at->elem]);
        } else {
            long m = c->length[i];
            double *v = malloc((size_t)(m + 1) * sizeof *v);
            if (!v)
                return 2;
            long count = parse_list(at->text, v, m + 1);
            for (long e = 0; e < m; e++)
                pt->x[s + e] = count == 1 ? v[0] : v[e];
            free(v);
        }
    }
    return 0;
}

/* ---- human-readable report ---- */

/* ORDER TWINC_FD_*: what fd_kind says, for the report and the JSON. */
static const char *const fd_kind_name[] = {"central", "left", "right"};

static int is_int_type(twinc_type t) { return t != TWINC_T_DOUBLE; }

/* "x" or "x[3]" (a static buffer per call site's slot: two at a time). */
static const char *sname(const twinc_check *c, int slot)
{
    static char buf[4][160];
    static int next;
    next = (next + 1) % 4;
    return twinc_check_slot_name(c, slot, buf[next], sizeof buf[next]);
}

/* Input parameter i of point pt: a number, or an array's elements V0:V1:... */
static void print_input(FILE *out, const twinc_check *c, const twinc_check_point *pt, int i)
{
    const twinc_param *p = &c->kernel->params[i];
    int s = c->param_slot[i];
    if (p->length) {
        for (int e = 0; e < c->length[i]; e++)
            fprintf(out, "%s%.17g", e ? ":" : "", pt->x[s + e]);
        if (c->length[i] == 0)
            fputs("(no elements)", out);
    } else if (!is_int_type(p->type)) {
        fprintf(out, "%.17g", pt->x[s]);
    } else if (p->type == TWINC_T_UINT || p->type == TWINC_T_ULONG) {
        fprintf(out, "%llu", (unsigned long long)pt->ix[s]);
    } else {
        fprintf(out, "%lld", pt->ix[s]);
    }
}

/* A list of slots, an array's consecutive elements as x[0..3]. */
static void print_slot_list(FILE *out, const twinc_check *c, int n, const int *slots)
{
    for (int a = 0; a < n;) {
        int s = slots[a], i = c->slot_param[s], b = a;
        while (b + 1 < n && c->slot_param[slots[b + 1]] == i)
            b++;
        if (c->slot_elem[s] < 0)
            fprintf(out, " %s", c->kernel->params[i].name);
        else if (a == b)
            fprintf(out, " %s", sname(c, s));
        else
            fprintf(out, " %s[%d..%d]", c->kernel->params[i].name, c->slot_elem[s],
                    c->slot_elem[slots[b]]);
        a = b + 1;
    }
    if (n == 0)
        fputs(" (none)", out);
}

/* "the adjoint twin returned -2: out of memory ..." */
static void status_message(char *buf, size_t len, const twinc_check_point *pt)
{
    if (pt->failed && strcmp(pt->failed, "checker") == 0)
        snprintf(buf, len, "the checker could not evaluate this point: %s",
                 twinc_strerror(pt->status));
    else
        snprintf(buf, len, "the %s twin returned %d: %s", pt->failed ? pt->failed : "?",
                 pt->status, twinc_strerror(pt->status));
}

static void print_point_text(FILE *out, const twinc_check *c, int p)
{
    const twinc_kernel *k = c->kernel;
    const twinc_check_point *pt = &c->points[p];

    fprintf(out, "  point %d:", p);
    for (int i = 0; i < k->nparams; i++) {
        if (!is_input(&k->params[i]))
            continue;
        fprintf(out, " %s=", k->params[i].name);
        print_input(out, c, pt, i);
    }
    fputc('\n', out);
    if (pt->status != TWINC_OK) {
        char msg[256];
        status_message(msg, sizeof msg, pt);
        fprintf(out, "    FAIL: %s\n", msg);
        return;
    }
    for (int jo = 0; jo < c->nout; jo++) {
        int j = c->outputs[jo];
        fprintf(out, "    %s = %.17g\n", sname(c, j), pt->value[j]);
    }
    for (int jo = 0; jo < c->nout && c->nin > 0; jo++) {
        int j = c->outputs[jo];
        char label[200];
        snprintf(label, sizeof label, "d %s / d", sname(c, j));
        fprintf(out, "    %-14s %24s %24s  %24s  %s\n", label, "adjoint", "finite difference",
                "tangent", "rho");
        for (int ii = 0; ii < c->nin; ii++) {
            int i = c->inputs[ii];
            size_t ix = twinc_check_idx(c, j, i);
            double r = pt->rho[ix] > pt->rho_tangent[ix] || isnan(pt->rho[ix])
                           ? pt->rho[ix]
                           : pt->rho_tangent[ix];
            double bound = pt->rho_bound[ix];
            fprintf(out, "      %-12s %24.17g %24.17g%s %24.17g  %.2g%s\n", sname(c, i),
                    pt->adjoint[ix], pt->fd[ix], pt->fd_kind[ix] ? "*" : " ", pt->tangent[ix],
                    r, r <= bound ? "" : "  <-- mismatch");
        }
    }
    for (int jo = 0; jo < c->nout; jo++)
        for (int ii = 0; ii < c->nin; ii++) {
            int j = c->outputs[jo], i = c->inputs[ii];
            size_t ix = twinc_check_idx(c, j, i);
            unsigned kind = pt->fd_kind[ix];
            if (kind != TWINC_FD_SMOOTH && kind < sizeof fd_kind_name / sizeof *fd_kind_name)
                fprintf(out,
                        "    * %s is not smooth in %s within a step of this point (a branch or "
                        "kink); one-sided finite difference from the %s\n",
                        sname(c, j), sname(c, i), fd_kind_name[kind]);
            if (pt->rho_bound[ix] > c->opt.fd_rtol)
                fprintf(out,
                        "    note: d %s / d %s: finite differences are noisy here (error about "
                        "%.2g); rho bound raised to %.2g\n",
                        sname(c, j), sname(c, i), pt->fd_error[ix], pt->rho_bound[ix]);
        }
    fprintf(out, "    dot-product test: %.17g vs %.17g, error %.2g\n", pt->dot_lhs,
            pt->dot_rhs, pt->dot_error);
    if (pt->pass) {
        fputs("    PASS\n", out);
        return;
    }
    int value_bad = 0;
    for (int jo = 0; jo < c->nout; jo++)
        value_bad |= !isfinite(pt->value[c->outputs[jo]]);
    if (pt->flags & TWINC_CHECK_F_NONFINITE)
        fprintf(out, "    FAIL: %s is not finite at this point; give --at (or `#pragma aad check(...)`)\n",
                value_bad ? "value" : "a derivative");
    if (pt->flags & (TWINC_CHECK_F_ADJOINT | TWINC_CHECK_F_TANGENT)) {
        for (int jo = 0; jo < c->nout; jo++)
            for (int ii = 0; ii < c->nin; ii++) {
                int j = c->outputs[jo], i = c->inputs[ii];
                size_t ix = twinc_check_idx(c, j, i);
                double tol = pt->rho_bound[ix];
                /* a NaN here is already reported as "not finite" */
                if (pt->rho[ix] > tol)
                    fprintf(out,
                            "    FAIL: d %s / d %s: the adjoint gives %.17g, finite "
                            "differences %.17g (rho %.2g > %.2g)\n",
                            sname(c, j), sname(c, i), pt->adjoint[ix], pt->fd[ix],
                            pt->rho[ix], tol);
                if (pt->rho_tangent[ix] > tol)
                    fprintf(out,
                            "    FAIL: d %s / d %s: the tangent gives %.17g, finite "
                            "differences %.17g (rho %.2g > %.2g)\n",
                            sname(c, j), sname(c, i), pt->tangent[ix], pt->fd[ix],
                            pt->rho_tangent[ix], tol);
                int bad = pt->rho[ix] > tol || pt->rho_tangent[ix] > tol;
                if (bad && pt->fd_kind[ix])
                    fprintf(out,
                            "          %s is not smooth in %s here (a branch) and neither "
                            "side's difference matches; give --at to check elsewhere\n",
                            sname(c, j), sname(c, i));
                else if (bad && tol > c->opt.fd_rtol && tol >= c->opt.fd_rtol_max)
                    fprintf(out,
                            "          finite differences are too noisy here (error about "
                            "%.2g) to check this point; give --at\n",
                            pt->fd_error[ix]);
            }
    }
    if (pt->flags & TWINC_CHECK_F_DOT)
        fprintf(out, "    FAIL: the tangent and adjoint twins disagree (dot-product error %.2g "
                     "> %.2g)\n",
                pt->dot_error, c->opt.dot_rtol);
    if (pt->flags & TWINC_CHECK_F_CONSISTENCY)
        fprintf(out,
                "    FAIL: the twins compute different values (primal, tangent, adjoint, "
                "your function, or lane sums of a uniform input's adjoint differ by %.2g "
                "> %.2g)\n",
                pt->consistency, c->opt.consistency_rtol);
}

static void print_kernel_text(FILE *out, const twinc_check *c)
{
    const twinc_kernel *k = c->kernel;
    fprintf(out, "%s (%s:%d): active inputs", k->name, k->file ? k->file : "?", k->line);
    print_slot_list(out, c, c->nin, c->inputs);
    fputs("; outputs", out);
    print_slot_list(out, c, c->nout, c->outputs);
    fputc('\n', out);
    for (int p = 0; p < c->npoints; p++)
        print_point_text(out, c, p);
    fprintf(out, "%s %s: %d of %d points passed; max rho %.2g (bound %.2g), max dot-product "
                 "error %.2g (bound %.2g)\n\n",
            c->pass ? "PASS" : "FAIL", k->name, c->npassed, c->npoints, c->max_rho,
            c->opt.fd_rtol, c->max_dot_error, c->opt.dot_rtol);
}

/* ---- JSON ---- */

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void json_double(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%.17g", v);
    else
        fputs("null", out);
}

/* {"out": {"x": m[out,x], ...}, ...}, keyed by slot names ("x[3]"). */
static void json_matrix(FILE *out, const twinc_check *c, const double *m)
{
    fputc('{', out);
    for (int jo = 0; jo < c->nout; jo++) {
        int j = c->outputs[jo];
        fputs(jo ? ", " : "", out);
        json_string(out, sname(c, j));
        fputs(": {", out);
        for (int ii = 0; ii < c->nin; ii++) {
            int i = c->inputs[ii];
            fputs(ii ? ", " : "", out);
            json_string(out, sname(c, i));
            fputs(": ", out);
            json_double(out, m[twinc_check_idx(c, j, i)]);
        }
        fputc('}', out);
    }
    fputc('}', out);
}

static void json_point(FILE *out, const twinc_check *c, int p)
{
    const twinc_kernel *k = c->kernel;
    const twinc_check_point *pt = &c->points[p];
    fputs("{\"kernel\": ", out);
    json_string(out, k->name);
    fputs(", \"file\": ", out);
    json_string(out, k->file);
    fprintf(out, ", \"line\": %d, \"point\": %d, \"inputs\": {", k->line, p);
    int first = 1, arrays = 0;
    for (int s = 0; s < c->nslots; s++) {
        const twinc_param *par = &k->params[c->slot_param[s]];
        if (!is_input(par))
            continue;
        arrays |= par->length != NULL;
        fputs(first ? "" : ", ", out);
        first = 0;
        json_string(out, sname(c, s));
        fputs(": ", out);
        if (is_int_type(par->type))
            print_input(out, c, pt, c->slot_param[s]);
        else
            json_double(out, pt->x[s]);
    }
    fputs("}, \"values\": {", out);
    for (int jo = 0; jo < c->nout; jo++) {
        int j = c->outputs[jo];
        fputs(jo ? ", " : "", out);
        json_string(out, sname(c, j));
        fputs(": ", out);
        json_double(out, pt->value[j]);
    }
    fputs("}", out);
    if (arrays || c->nslots != c->nparams) { /* element counts, for kernels with arrays */
        fputs(", \"lengths\": {", out);
        first = 1;
        for (int i = 0; i < k->nparams; i++) {
            if (!k->params[i].length)
                continue;
            fputs(first ? "" : ", ", out);
            first = 0;
            json_string(out, k->params[i].name);
            fprintf(out, ": %d", c->length[i]);
        }
        fputs("}", out);
    }
    fputs(",\n  \"adjoint\": ", out);
    json_matrix(out, c, pt->adjoint);
    fputs(",\n  \"fd\": ", out);
    json_matrix(out, c, pt->fd);
    fputs(",\n  \"tangent\": ", out);
    json_matrix(out, c, pt->tangent);
    fputs(",\n  \"fd_kind\": {", out);
    for (int jo = 0; jo < c->nout; jo++) {
        int j = c->outputs[jo];
        fputs(jo ? ", " : "", out);
        json_string(out, sname(c, j));
        fputs(": {", out);
        for (int ii = 0; ii < c->nin; ii++) {
            int i = c->inputs[ii];
            unsigned kind = pt->fd_kind[twinc_check_idx(c, j, i)];
            fputs(ii ? ", " : "", out);
            json_string(out, sname(c, i));
            fputs(": ", out);
            json_string(out, kind < sizeof fd_kind_name / sizeof *fd_kind_name ? fd_kind_name[kind]
                                                                                 : "?");
        }
        fputc('}', out);
    }
    fputs("},\n  \"fd_error\": ", out);
    json_matrix(out, c, pt->fd_error);
    fputs(",\n  \"rho_bound\": ", out);
    json_matrix(out, c, pt->rho_bound);
    fputs(",\n  \"rho\": ", out);
    json_matrix(out, c, pt->rho);
    fputs(",\n  \"rho_tangent\": ", out);
    json_matrix(out, c, pt->rho_tangent);
    fputs(",\n  \"dot_lhs\": ", out);
    json_double(out, pt->dot_lhs);
    fputs(", \"dot_rhs\": ", out);
    json_double(out, pt->dot_rhs);
    fputs(", \"dot_error\": ", out);
    json_double(out, pt->dot_error);
    fputs(", \"consistency\": ", out);
    json_double(out, pt->consistency);
    fputs(", \"status\": ", out);
    if (pt->status == TWINC_OK) {
        fputs("\"ok\"", out);
    } else {
        char msg[256];
        status_message(msg, sizeof msg, pt);
        json_string(out, msg);
    }
    static const struct {
        unsigned flag;
        const char *name;
    } why[] = {{TWINC_CHECK_F_STATUS, "status"},   {TWINC_CHECK_F_NONFINITE, "nonfinite"},
               {TWINC_CHECK_F_ADJOINT, "adjoint"}, {TWINC_CHECK_F_TANGENT, "tangent"},
               {TWINC_CHECK_F_DOT, "dot"},         {TWINC_CHECK_F_CONSISTENCY, "consistency"}};
    fputs(", \"failures\": [", out);
    first = 1;
    for (size_t w = 0; w < sizeof why / sizeof why[0]; w++) {
        if (!(pt->flags & why[w].flag))
            continue;
        fputs(first ? "" : ", ", out);
        first = 0;
        json_string(out, why[w].name);
    }
    fprintf(out, "], \"pass\": %s}", pt->pass ? "true" : "false");
}

/* ---- the command ---- */

int twinc_cmd_check(int argc, char **argv)
{
    Opts o = {0};
    twinc_lib *lib = NULL;
    const twinc_kernel **ks = NULL;
    int nk = 0, rc;
    char err[1024];

    rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        rc = rc < 0 ? 0 : rc; /* -1: --help */
        goto cleanup;
    }

    lib = twinc_lib_open(o.lib, err, sizeof err);
    if (!lib) {
        fprintf(stderr, "twinc check: %s\n", err);
        rc = 2;
        goto cleanup;
    }

    int total = twinc_lib_count(lib);
    ks = malloc((size_t)(total ? total : 1) * sizeof *ks);
    if (!ks) {
        fputs("twinc check: out of memory\n", stderr);
        rc = 2;
        goto cleanup;
    }
    if (o.nkernels == 0) {
        for (int i = 0; i < total; i++)
            ks[nk++] = twinc_lib_kernel(lib, i);
    } else {
        for (int n = 0; n < o.nkernels; n++) {
            const twinc_kernel *k = twinc_lib_find(lib, o.kernels[n]);
            if (!k) {
                fprintf(stderr, "twinc check: no kernel '%s' in %s; available: ", o.kernels[n],
                        o.lib);
                list_kernels(stderr, lib);
                fputc('\n', stderr);
                rc = 2;
                goto cleanup;
            }
            int dup = 0;
            for (int m = 0; m < nk; m++)
                dup |= ks[m] == k;
            if (!dup)
                ks[nk++] = k;
        }
    }
    if ((rc = validate_at(&o, ks, nk)) != 0)
        goto cleanup;

    int npass = 0, nfail = 0, npoints = 0, nbad_points = 0;
    if (o.json)
        fputs("[", stdout);
    int nobj = 0;
    for (int n = 0; n < nk; n++) {
        const twinc_kernel *k = ks[n];
        Opts ko; /* the kernel's own check(...) point, then --at over it */
        if (kernel_opts(&o, k, &ko) != 0) {
            rc = 2;
            goto cleanup;
        }
        long long *ints = malloc((size_t)(k->nparams ? k->nparams : 1) * sizeof *ints);
        twinc_check *c = NULL;
        if (ints) { /* the integers first: they fix the array lengths */
            kernel_ints(&ko, k, ints);
            c = twinc_check_create_at(k, o.points, ints, err, sizeof err);
            free(ints);
        } else {
            snprintf(err, sizeof err, "out of memory");
        }
        int at_rc = c ? apply_at(&ko, c) : 0;
        free_opts_at(&ko);
        if (at_rc != 0) {
            twinc_check_destroy(c);
            c = NULL;
            snprintf(err, sizeof err, "out of memory");
        }
        if (!c) {
            nfail++;
            if (o.json) {
                fputs(nobj++ ? ",\n" : "\n", stdout);
                fputs("{\"kernel\": ", stdout);
                json_string(stdout, k->name);
                fputs(", \"point\": null, \"error\": ", stdout);
                json_string(stdout, err);
                fputs(", \"pass\": false}", stdout);
            } else {
                printf("FAIL %s: cannot be checked: %s\n\n", k->name, err);
            }
            continue;
        }
        twinc_check_randomize(c, 0, (uint64_t)o.seed, SPREAD);
        c->opt.fd_rtol = o.rtol;
        c->opt.dot_rtol = o.dot_rtol;
        c->opt.lane_stride = o.lane_stride;
        c->opt.element_stride = o.element_stride;
        c->opt.seed = (uint64_t)o.seed;
        twinc_check_run(c); /* errors are recorded per point */

        if (c->pass)
            npass++;
        else
            nfail++;
        npoints += c->npoints;
        nbad_points += c->npoints - c->npassed;
        if (o.json) {
            for (int p = 0; p < c->npoints; p++) {
                fputs(nobj++ ? ",\n" : "\n", stdout);
                json_point(stdout, c, p);
            }
        } else {
            print_kernel_text(stdout, c);
        }
        twinc_check_destroy(c);
    }
    if (o.json)
        fputs("\n]\n", stdout);
    else
        printf("%s: %d of %d kernels passed, %d of %d points failed\n",
               nfail ? "FAIL" : "PASS", npass, npass + nfail, nbad_points, npoints);
    rc = nfail ? 1 : 0;

cleanup:
    fflush(stdout);
    twinc_lib_close(lib);
    free(ks);
    opts_free(&o);
    return rc;
}
