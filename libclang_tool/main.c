/*
 * main.c — the twinc command line.
 *
 *   twinc gen FILE.c [-o OUT.twin.c] [--header OUT.twin.h] [-p BUILD_DIR]
 *             [--dump-ir[=PASS]] [-- COMPILER-FLAGS...]
 *   twinc check LIB.so [...]          (check_cmd.c)
 *   twinc --help | --version
 */
#include <clang-c/CXCompilationDatabase.h>
#include <clang-c/Index.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twinc_gen.h"

int twinc_cmd_check(int argc, char **argv);

static void usage(FILE *out)
{
    fputs("usage: twinc gen FILE.c [-o OUT.twin.c] [--header OUT.twin.h] [-p BUILD_DIR]\n"
          "                 [--dump-ir[=PASS]] [-- COMPILER-FLAGS...]\n"
          "       twinc check LIB.so [--kernel NAME] [--at name=value,...] [--points N]\n"
          "                 [--seed S] [--json]\n"
          "       twinc --help | --version\n"
          "\n"
          "gen    reads the #pragma aad functions of FILE.c and writes their batched primal,\n"
          "       tangent and adjoint twins and a registry to OUT.twin.c (default: FILE.twin.c)\n"
          "       and prototypes to OUT.twin.h (default: OUT.twin.c with .h).\n"
          "         -p DIR        take the compiler flags of FILE.c from DIR/compile_commands.json\n"
          "         -- FLAGS      compiler flags for the parse (-I, -D, -std=...)\n"
          "         --dump-ir[=PASS]  print the IR after PASS (lower, activity, varying, tbr;\n"
          "                       default tbr) to standard output\n"
          "       On an unsupported construct: file:line:col: error: ..., exit status 1, and no\n"
          "       output file is written.\n"
          "check  loads a shared library built from twins and compares, for every kernel, the\n"
          "       adjoint gradient with central finite differences and the tangent twin\n"
          "       (dot-product test); exit status 1 on a mismatch.  `twinc check --help`.\n"
          "\n"
          "Environment: TWINC_INCLUDE overrides the folder holding twinc.h.\n",
          out);
}

/* Flags for `file` from BUILD_DIR/compile_commands.json, without the
 * compiler, the file itself, -c and -o OUT. */
static int flags_from_db(const char *dir, const char *file, char ***out, int *nout)
{
    CXCompilationDatabase_Error err;
    CXCompilationDatabase db = clang_CompilationDatabase_fromDirectory(dir, &err);
    if (err != CXCompilationDatabase_NoError) {
        fprintf(stderr, "twinc: error: cannot load '%s/compile_commands.json'\n", dir);
        return -1;
    }
    char *abs = realpath(file, NULL);
    CXCompileCommands cmds = clang_CompilationDatabase_getCompileCommands(db, abs ? abs : file);
    free(abs);
    int rc = -1;
    if (!cmds || clang_CompileCommands_getSize(cmds) == 0) {
        fprintf(stderr, "twinc: error: '%s' is not in '%s/compile_commands.json'\n", file, dir);
        goto cleanup;
    }
    CXCompileCommand cmd = clang_CompileCommands_getCommand(cmds, 0);
    unsigned n = clang_CompileCommand_getNumArgs(cmd);
    CXString wd = clang_CompileCommand_getDirectory(cmd);
    char **v = calloc(2 * n + 2, sizeof *v);
    int k = 0;
    for (unsigned i = 1; i < n; i++) {
        CXString s = clang_CompileCommand_getArg(cmd, i);
        const char *a = clang_getCString(s);
        if (!strcmp(a, "-c")) {
        } else if (!strcmp(a, "-o") && i + 1 < n) {
            i++;
        } else if (!strncmp(a, "-o", 2)) {
        } else if (strstr(a, file) || (a[0] != '-' && strstr(file, a))) {
            /* the source file itself */
        } else if (!strncmp(a, "-I", 2) && a[2] && a[2] != '/') {
            /* relative include paths are relative to the command's directory */
            char *p = malloc(strlen(a) + strlen(clang_getCString(wd)) + 2);
            sprintf(p, "-I%s/%s", clang_getCString(wd), a + 2);
            v[k++] = p;
        } else {
            v[k++] = strdup(a);
        }
        clang_disposeString(s);
    }
    clang_disposeString(wd);
    *out = v;
    *nout = k;
    rc = 0;
cleanup:
    if (cmds)
        clang_CompileCommands_dispose(cmds);
    clang_CompilationDatabase_dispose(db);
    return rc;
}

static int cmd_gen(int argc, char **argv)
{
    GenOptions opt = {0};
    const char *build_dir = NULL;
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            opt.out_c = argv[++i];
        } else if (!strcmp(a, "--header") && i + 1 < argc) {
            opt.out_h = argv[++i];
        } else if (!strcmp(a, "-p") && i + 1 < argc) {
            build_dir = argv[++i];
        } else if (!strcmp(a, "--dump-ir")) {
            opt.dump_ir = "";
        } else if (!strncmp(a, "--dump-ir=", 10)) {
            opt.dump_ir = a + 10;
            if (!twinc_is_pass(opt.dump_ir)) {
                fprintf(stderr, "twinc: error: unknown pass '%s' (lower, activity, varying, tbr)\n", opt.dump_ir);
                return 2;
            }
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-') {
            fprintf(stderr, "twinc: error: unknown option '%s' (twinc --help)\n", a);
            return 2;
        } else if (!opt.input) {
            opt.input = a;
        } else {
            fprintf(stderr, "twinc: error: more than one input file ('%s', '%s')\n", opt.input, a);
            return 2;
        }
    }
    if (!opt.input) {
        fputs("twinc: error: no input file (twinc --help)\n", stderr);
        return 2;
    }
    char **dbflags = NULL;
    int ndb = 0;
    if (build_dir && flags_from_db(build_dir, opt.input, &dbflags, &ndb))
        return 1;
    int nextra = argc - i;
    const char **flags = calloc((size_t)(ndb + nextra + 1), sizeof *flags);
    for (int k = 0; k < ndb; k++)
        flags[k] = dbflags[k];
    for (int k = 0; k < nextra; k++)
        flags[ndb + k] = argv[i + k];
    opt.cflags = flags;
    opt.ncflags = ndb + nextra;
    opt.err_out = stderr;
    opt.dump_out = stdout;
    int rc = twinc_generate(&opt);
    for (int k = 0; k < ndb; k++)
        free(dbflags[k]);
    free(dbflags);
    free(flags);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("twinc %s (libclang: ", TWINC_VERSION);
        CXString v = clang_getClangVersion();
        printf("%s)\n", clang_getCString(v));
        clang_disposeString(v);
        return 0;
    }
    if (!strcmp(argv[1], "gen"))
        return cmd_gen(argc - 1, argv + 1);
    if (!strcmp(argv[1], "check"))
        return twinc_cmd_check(argc - 1, argv + 1);
    fprintf(stderr, "twinc: error: unknown command '%s' (twinc --help)\n", argv[1]);
    return 2;
}
