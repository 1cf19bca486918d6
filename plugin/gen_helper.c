/*
 * gen_helper.c — twinc-gen, the process the compiler plugins run the
 * generator in.
 *
 *   twinc-gen INPUT.c OUT.twin.c OUT.twin.h [PARSE-FLAGS...]
 *   twinc-gen --serve SOCKET
 *
 * The first form calls twinc_generate() exactly as the twinc command does and
 * writes each diagnostic to standard output as one line a plugin reads back,
 * then a status line:
 *
 *   error|note TAB line TAB col TAB file TAB message NEWLINE
 *   status TAB rc NEWLINE
 *
 * (file empty and line 0 when there is no location; TAB, NEWLINE and backslash
 * inside file or message written as \t, \n, \\; rc is the generator's: 0 twins
 * written, 1 user errors and nothing written, 2 other).  The exit status is rc.
 *
 * The second form is the same generator kept warm.  Starting libclang and LLVM
 * costs a fresh process ~17 ms of CPU before it parses anything — more than
 * parsing and emitting a typical file.  A server loads them once, listens on a
 * Unix socket (in a folder only its user can enter) and forks one worker per
 * core.  A worker takes a request (working folder, umask, the few environment
 * variables the parse depends on, then the arguments of the first form, all
 * NUL-terminated, up to end of input), answers on the connection in the format
 * above, and takes the next; the generator keeps no state between runs (one
 * arena per run, no mutable globals), and each worker is a process of its own,
 * so a parallel build's requests run side by side.  A worker that dies is
 * replaced (the plugin redoes that request itself), and one that has served
 * 500 requests too.  The server keeps none of the files of the compiler that
 * started it (so no build or CI pipe waits on it) and exits once its workers
 * have been idle for TWINC_GEN_SERVER_IDLE seconds (default 30).
 * twinc_plugin.c starts it on demand and falls back to the first form whenever
 * anything about it fails.
 *
 * Why a process at all and not a thread inside the compiler: mapping and
 * relocating LLVM inside cc1 while cc1 compiles makes the two fight over one
 * address space, and a crash in the generator must not take the compiler down.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "twinc_gen.h"

/* ---- one generation ---- */

static void put_escaped(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\t')
            fputs("\\t", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else if (*s == '\\')
            fputs("\\\\", out);
        else
            putc(*s, out);
    }
}

static void sink(void *ctx, SrcLoc loc, int is_error, const char *msg)
{
    FILE *out = ctx;
    int located = loc.file && loc.line > 0;
    fprintf(out, "%s\t%d\t%d\t", is_error ? "error" : "note", located ? loc.line : 0, located ? loc.col : 0);
    put_escaped(out, located ? loc.file : "");
    putc('\t', out);
    put_escaped(out, msg);
    putc('\n', out);
}

/* argv: INPUT OUT_C OUT_H FLAGS... */
static int generate(FILE *out, int argc, char **argv)
{
    FILE *quiet = fopen("/dev/null", "w");
    GenOptions opt = {
        .input = argv[0],
        .out_c = argv[1],
        .out_h = argv[2],
        .cflags = (const char *const *)argv + 3,
        .ncflags = argc - 3,
        .err_out = quiet ? quiet : stderr,
        .sink = sink,
        .sink_ctx = out,
    };
    int rc = twinc_generate(&opt);
    if (quiet)
        fclose(quiet);
    fprintf(out, "status\t%d\n", rc);
    return fflush(out) == 0 ? rc : 2;
}

/* ---- the server ---- */

/* Read one request to its end, set up as the compile was, answer, close. */
static void serve_one(int conn)
{
    size_t len = 0, cap = 1 << 14;
    char *req = malloc(cap), **field = NULL;
    FILE *out = NULL;
    for (;;) {
        if (!req)
            goto done;
        if (len + 1 >= cap) {
            char *r = cap < (1u << 24) ? realloc(req, cap *= 2) : NULL;
            if (!r)
                goto done;
            req = r;
        }
        ssize_t n = read(conn, req + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    /* cwd, umask, NAME=VALUE or NAME (unset)..., "", INPUT OUT_C OUT_H FLAGS... */
    field = malloc(sizeof *field * (len + 1));
    int nf = 0;
    for (size_t i = 0; field && i < len; i += strlen(req + i) + 1)
        field[nf++] = req + i;
    if (!field || len == 0 || req[len - 1] != '\0' || nf < 3 || chdir(field[0]) != 0)
        goto done;
    umask((mode_t)strtol(field[1], NULL, 8));
    int i = 2;
    for (; i < nf && *field[i]; i++) {
        char *eq = strchr(field[i], '=');
        if (eq) {
            *eq = '\0';
            setenv(field[i], eq + 1, 1);
        } else {
            unsetenv(field[i]);
        }
    }
    i++; /* the empty string */
    if (nf - i >= 3 && (out = fdopen(conn, "w")) != NULL)
        generate(out, nf - i, field + i);
done:
    if (out)
        fclose(out);
    else
        close(conn);
    free(field);
    free(req);
}

static int listen_on(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return -1;
    strcpy(a.sun_path, path);
    /* non-blocking: idle workers wait in poll(), never in accept() */
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return -1;
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) {
        /* a socket file is there: a live server keeps it, a dead one's is removed */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int live = errno == EADDRINUSE && probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof a) == 0;
        if (probe >= 0)
            close(probe);
        if (live || unlink(path) != 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0) {
            close(s);
            return -1;
        }
    }
    if (listen(s, 128) != 0) {
        close(s);
        unlink(path);
        return -1;
    }
    return s;
}

/* Parse a file that includes the usual headers once, so that what libclang
 * sets up on first use is ready in every child (it errs: no #pragma aad). */
static void warm_up(void)
{
    char path[] = "/tmp/twinc-gen-warm-XXXXXX.c";
    int fd = mkstemps(path, 2);
    if (fd < 0)
        return;
    static const char text[] = "#include <math.h>\n#include <stddef.h>\n#include \"twinc.h\"\n";
    int ok = write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1);
    close(fd);
    FILE *quiet = fopen("/dev/null", "w");
    GenOptions opt = {.input = path, .err_out = quiet};
    if (ok && quiet)
        twinc_generate(&opt);
    if (quiet)
        fclose(quiet);
    unlink(path);
}

/* A worker: 0 when idle for idle_ms, 3 after its share of requests. */
static int work(int s, int idle_ms)
{
    for (int served = 0; served < 500;) {
        struct pollfd p = {.fd = s, .events = POLLIN};
        int r = poll(&p, 1, idle_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        int conn = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0)
            continue; /* another worker took it */
        serve_one(conn);
        served++;
    }
    return 3;
}

static int serve(const char *path)
{
    /* keep nothing of the compiler that started us: no build pipe waits on a server */
    close_range(3, ~0U, 0);
    int null = open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3 && null >= 0; fd++)
        if (fd != null)
            dup2(null, fd);
    if (null > 2)
        close(null);
    if (chdir("/") != 0) /* hold no build folder; each request names its own */
        return 1;
    signal(SIGPIPE, SIG_IGN);
    const char *idle_env = getenv("TWINC_GEN_SERVER_IDLE");
    int idle_ms = 1000 * (idle_env && atoi(idle_env) > 0 ? atoi(idle_env) : 30);

    /* one server per socket: starting ones take turns at binding */
    char lock_path[sizeof ((struct sockaddr_un *)0)->sun_path + 8];
    snprintf(lock_path, sizeof lock_path, "%s.lock", path);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) != 0)
        return 1;
    int s = listen_on(path);
    struct stat mine;
    if (s >= 0 && stat(path, &mine) != 0) {
        close(s);
        s = -1;
    }
    close(lock);
    if (s < 0)
        return 1;
    warm_up();

    /* the workers: each answers requests one after another until it has been
       idle long enough; one that dies (or has served its share) is replaced */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nworkers = cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus, alive = 0;
    for (;;) {
        while (alive < nworkers) {
            pid_t pid = fork();
            if (pid == 0)
                _exit(work(s, idle_ms));
            if (pid < 0)
                break;
            alive++;
        }
        int status;
        pid_t pid = wait(&status);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid < 0)
            break;
        alive--;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            nworkers--; /* idle: not replaced */
            if (nworkers == 0)
                break;
        }
    }
    /* idle: leave, removing the socket unless a newer server owns the name now */
    struct stat now;
    if (stat(path, &now) == 0 && now.st_ino == mine.st_ino && now.st_dev == mine.st_dev)
        unlink(path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--serve"))
        return serve(argv[2]);
    if (argc < 4 || argv[1][0] == '-') {
        fputs("usage: twinc-gen INPUT.c OUT.twin.c OUT.twin.h [PARSE-FLAGS...]\n"
              "       twinc-gen --serve SOCKET\n"
              "(run by the twinc compiler plugins; see `twinc gen` for the command line)\n",
              stderr);
        return 2;
    }
    return generate(stdout, argc - 1, argv + 1);
}
