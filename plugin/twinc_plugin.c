/*
 * twinc_plugin.c — the generator job both compiler plugins run.
 *
 * The plugins link nothing but libc, and a compile without `#pragma aad` never
 * meets the generator.  For a file with one, a job hands the generation to
 * twinc-gen (gen_helper.c), which sits one folder above the plugins
 * (lib/twinc/twinc-gen next to lib/twinc/gcc/twinc.so and
 * lib/twinc/clang/twinc.so; the same layout in build/plugin/):
 *
 *   to a warm server, `twinc-gen --serve`, over a Unix socket — started on
 *     demand by the first compile that finds none, and shared by the compiles
 *     that follow, so that LLVM is loaded once per build rather than once per
 *     file (TWINC_GEN_SERVER=0 turns this off);
 *   or, when there is no server to be had, to a fresh `twinc-gen` process
 *     whose standard output is a pipe.
 *
 * Either way the answer is the same text, one line per diagnostic and a status
 * line, read back at the end of the translation unit; the plugin re-reports
 * every diagnostic through its compiler, at the compiler's own location for
 * file:line:col, so the user sees one message in the compiler's format.  If
 * a server dies mid-request, the job quietly redoes the work in a process.
 *
 * Why never inside the compiler: LLVM is tens of megabytes to map and
 * relocate, and doing that in cc1 while cc1 compiles makes the two fight over
 * one address space (measured: a plugin compile went from 1.4x to 1.7x a plain
 * one); in Clang a second copy of clang's code would share the process; and a
 * crash in the generator must not take the compiler down.
 *
 * A job starts as soon as the plugin knows the file has a `#pragma aad`
 * (before the compiler parses it, when a quick look at the text finds one) and
 * works while the compiler parses, optimises and emits code.  If the compiler
 * exits early (a fatal error), an atexit handler collects every job, so none
 * outlives the compile.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "twinc_plugin.h"

extern char **environ;

struct TpJob {
    char *input, *out_c, *out_h;
    TpArgs flags;   /* the parse flags */
    TpDiag *diags;
    int ndiags, cap;
    int rc;
    pid_t pid;      /* a fresh twinc-gen of ours, 0 once reaped */
    int fd;         /* its standard output, or the connection to the server */
    int served;     /* the request went to a warm server */
    int got_status; /* the answer ended with its status line */
    struct TpJob *next_running;
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("twinc plugin: out of memory\n", stderr);
        abort();
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

static char *cat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = xmalloc(la + lb + lc + 1);
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

/* ---- argument lists ---- */

void tp_args_add(TpArgs *a, const char *s)
{
    if (a->n + 1 >= a->cap) { /* room for a NULL terminator too */
        a->cap = a->cap ? 2 * a->cap : 16;
        char **v = realloc(a->v, sizeof *v * (size_t)a->cap);
        if (!v)
            abort();
        a->v = v;
    }
    a->v[a->n++] = xstrdup(s);
    a->v[a->n] = NULL;
}

void tp_args_add2(TpArgs *a, const char *prefix, const char *s)
{
    char *t = cat3(prefix, s, "");
    tp_args_add(a, t);
    free(t);
}

void tp_args_free(TpArgs *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    *a = (TpArgs){0};
}

/* ---- paths and the quick look ---- */

char *tp_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    size_t n = (size_t)(slash - path);
    char *d = xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

int tp_same_file(const char *a, const char *b)
{
    if (!strcmp(a, b))
        return 1;
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

int tp_file_has_pragma(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        const char *p = skip_blanks(line);
        if (*p++ != '#')
            continue;
        p = skip_blanks(p);
        if (strncmp(p, "pragma", 6))
            continue;
        p += 6;
        const char *q = skip_blanks(p);
        found = q != p && !strncmp(q, "aad", 3) && strchr(" \t(\r\n", q[3] ? q[3] : ' ');
    }
    fclose(f);
    return found;
}

/* mkdir -p; a failure surfaces when the generator cannot write. */
static void make_dirs(const char *dir)
{
    char *p = xstrdup(dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(p, 0777);
        *s = '/';
    }
    mkdir(p, 0777);
    free(p);
}

/* OUT_DIR/<basename of input without its extension><ext> */
static char *twin_path(const char *out_dir, const char *input, const char *ext)
{
    const char *base = strrchr(input, '/');
    base = base ? base + 1 : input;
    char *stem = xstrdup(base);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem)
        *dot = '\0';
    char *dir = cat3(out_dir, "/", stem);
    char *path = cat3(dir, ext, "");
    free(dir);
    free(stem);
    return path;
}

/* `name` one folder above the plugin's own file. */
static char *beside_plugins(const char *name)
{
    Dl_info self;
    if (!dladdr((void *)beside_plugins, &self) || !self.dli_fname)
        return xstrdup(name);
    char *dir = tp_dirname(self.dli_fname);
    char *path = cat3(dir, "/../", name);
    free(dir);
    return path;
}

/* ---- diagnostics ---- */

static void add_diag(TpJob *j, const char *file, int line, int col, int is_error, const char *msg)
{
    if (j->ndiags == j->cap) {
        j->cap = j->cap ? 2 * j->cap : 8;
        TpDiag *d = realloc(j->diags, sizeof *d * (size_t)j->cap);
        if (!d)
            abort();
        j->diags = d;
    }
    j->diags[j->ndiags++] = (TpDiag){
        .file = file && *file && line > 0 ? xstrdup(file) : NULL,
        .line = line,
        .col = col,
        .is_error = is_error,
        .msg = xstrdup(msg),
    };
}

/* Undo gen_helper.c's escapes in place. */
static void unescape(char *s)
{
    char *w = s;
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            *w++ = *s == 't' ? '\t' : *s == 'n' ? '\n' : *s;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
}

/* "error|note TAB line TAB col TAB file TAB message", or "status TAB rc" */
static void parse_line(TpJob *j, char *line)
{
    char *f[5];
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < 5; p++)
        if (*p == '\t') {
            *p = '\0';
            f[n++] = p + 1;
        }
    if (n == 2 && !strcmp(f[0], "status")) {
        j->rc = atoi(f[1]);
        j->got_status = 1;
        return;
    }
    if (n < 5) {
        add_diag(j, NULL, 0, 0, 1, line); /* not ours: show it as it came */
        return;
    }
    unescape(f[3]);
    unescape(f[4]);
    add_diag(j, f[3], atoi(f[1]), atoi(f[2]), strcmp(f[0], "note") != 0, f[4]);
}

/* ---- in a process: twinc-gen, warm (a server) or fresh ---- */

/* Read twinc-gen's answer to its end (and reap it, if it is our child). */
static void finish_process(TpJob *j)
{
    size_t len = 0, cap = 4096;
    char *buf = xmalloc(cap);
    for (;;) {
        if (len + 1 == cap) {
            cap *= 2;
            char *b = realloc(buf, cap);
            if (!b)
                abort();
            buf = b;
        }
        ssize_t r = read(j->fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(j->fd);
    j->fd = -1;
    int status = 0;
    if (j->pid)
        while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
            ;
    for (char *line = buf, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            nl = line + strlen(line) - 1;
        else
            *nl = '\0';
        if (*line)
            parse_line(j, line);
    }
    free(buf);
    if (!j->got_status && j->pid) {
        char msg[128];
        if (WIFSIGNALED(status))
            snprintf(msg, sizeof msg, "the generator (twinc-gen) died of signal %d", WTERMSIG(status));
        else
            snprintf(msg, sizeof msg, "the generator (twinc-gen) stopped with status %d", WEXITSTATUS(status));
        add_diag(j, NULL, 0, 0, 1, msg);
        j->rc = 2;
    }
    j->pid = 0;
}

static int start_process(TpJob *j)
{
    char *helper = beside_plugins("twinc-gen");
    TpArgs argv = {0};
    tp_args_add(&argv, helper);
    tp_args_add(&argv, j->input);
    tp_args_add(&argv, j->out_c);
    tp_args_add(&argv, j->out_h);
    for (int i = 0; i < j->flags.n; i++)
        tp_args_add(&argv, j->flags.v[i]);
    int fds[2] = {-1, -1}, err;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        err = errno;
    } else {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
        err = posix_spawn(&j->pid, argv.v[0], &fa, NULL, argv.v, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(fds[1]);
    }
    if (err) {
        if (fds[0] >= 0)
            close(fds[0]);
        j->pid = 0;
        char msg[PATH_MAX + 128];
        snprintf(msg, sizeof msg, "cannot run the generator '%s': %s", helper, strerror(err));
        add_diag(j, NULL, 0, 0, 1, msg);
    } else {
        j->fd = fds[0];
    }
    tp_args_free(&argv);
    free(helper);
    return err == 0;
}

/* The server's socket: in $XDG_RUNTIME_DIR, or in /tmp/twinc-UID made for
 * the user alone, named after the twinc-gen it runs (path, inode, size, time),
 * so a rebuilt or reinstalled generator gets a server of its own. */
static int server_socket(const char *helper, struct sockaddr_un *a)
{
    struct stat st;
    char real[PATH_MAX], dir[PATH_MAX];
    if (!realpath(helper, real) || stat(real, &st) != 0)
        return -1;
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg == '/' && access(xdg, W_OK | X_OK) == 0) {
        snprintf(dir, sizeof dir, "%s", xdg);
    } else {
        snprintf(dir, sizeof dir, "/tmp/twinc-%u", (unsigned)getuid());
        mkdir(dir, 0700);
        struct stat d;
        if (lstat(dir, &d) != 0 || !S_ISDIR(d.st_mode) || d.st_uid != getuid() || (d.st_mode & 077))
            return -1;
    }
    unsigned long long h = 1469598103934665603ull; /* FNV-1a */
    unsigned long long id[4] = {(unsigned long long)st.st_ino, (unsigned long long)st.st_size,
                                (unsigned long long)st.st_mtim.tv_sec, (unsigned long long)st.st_mtim.tv_nsec};
    for (const char *c = real; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    for (size_t i = 0; i < sizeof id; i++)
        h = (h ^ ((unsigned char *)id)[i]) * 1099511628211ull;
    *a = (struct sockaddr_un){.sun_family = AF_UNIX};
    int n = snprintf(a->sun_path, sizeof a->sun_path, "%s/twinc-gen-%016llx.sock", dir, h);
    return n > 0 && (size_t)n < sizeof a->sun_path ? 0 : -1;
}

static int connect_to(const struct sockaddr_un *a)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)a, sizeof *a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static pid_t start_server(const char *helper, const struct sockaddr_un *a)
{
    char *argv[] = {(char *)helper, "--serve", (char *)a->sun_path, NULL};
    posix_spawnattr_t at;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID); /* not in the compile's process group */
    posix_spawn_file_actions_init(&fa);
    for (int fd = 0; fd < 3; fd++)
        posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", O_RDWR, 0);
    pid_t pid;
    int err = posix_spawn(&pid, helper, &fa, &at, argv, environ); /* it outlives us; init reaps it */
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return err ? -1 : pid;
}

static int put(int fd, const char *s)
{
    size_t n = strlen(s) + 1;
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL); /* a dead server must not kill the compiler */
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Hand the job to a server (started if none runs); 0 if one took it. */
static int start_served(TpJob *j)
{
    const char *want = getenv("TWINC_GEN_SERVER");
    if (want && !strcmp(want, "0"))
        return -1;
    char *helper = beside_plugins("twinc-gen");
    struct sockaddr_un a;
    int fd = -1;
    if (server_socket(helper, &a) == 0) {
        fd = connect_to(&a);
        pid_t pid = fd < 0 ? start_server(helper, &a) : -1;
        /* it loads LLVM (~20 ms), then listens; it exits at once if another
           server got there first (connect to that one) or it cannot listen */
        for (int waited = 0, step = 1; fd < 0 && pid > 0 && waited < 2000; waited += step) {
            usleep((useconds_t)step * 1000);
            step = step < 8 ? 2 * step : 8;
            int gone = waitpid(pid, NULL, WNOHANG) == pid;
            fd = connect_to(&a);
            if (gone)
                break;
        }
    }
    free(helper);
    if (fd < 0)
        return -1;
    /* the request: cwd, umask, the environment the parse reads, "", the arguments */
    char cwd[PATH_MAX], mask[16];
    mode_t m = umask(022);
    umask(m);
    snprintf(mask, sizeof mask, "%o", (unsigned)m);
    static const char *const env[] = {"TWINC_INCLUDE", "CPATH", "C_INCLUDE_PATH"};
    int bad = !getcwd(cwd, sizeof cwd) || put(fd, cwd) || put(fd, mask);
    for (size_t i = 0; !bad && i < sizeof env / sizeof *env; i++) {
        const char *v = getenv(env[i]);
        char *kv = v ? cat3(env[i], "=", v) : xstrdup(env[i]);
        bad = put(fd, kv);
        free(kv);
    }
    bad = bad || put(fd, "") || put(fd, j->input) || put(fd, j->out_c) || put(fd, j->out_h);
    for (int i = 0; !bad && i < j->flags.n; i++)
        bad = put(fd, j->flags.v[i]);
    if (bad || shutdown(fd, SHUT_WR) != 0) {
        close(fd);
        return -1;
    }
    j->fd = fd;
    j->served = 1;
    return 0;
}

/* ---- the job ---- */

/* Jobs still running, for the atexit handler. */
static TpJob *running_jobs;
static int atexit_done;

static void finish_job(TpJob *j)
{
    for (TpJob **p = &running_jobs; *p; p = &(*p)->next_running)
        if (*p == j) {
            *p = j->next_running;
            break;
        }
    if (j->fd >= 0) {
        finish_process(j);
        if (j->served && !j->got_status) {
            /* the server went away mid-request: do it here and now */
            for (int i = 0; i < j->ndiags; i++) {
                free(j->diags[i].file);
                free(j->diags[i].msg);
            }
            j->ndiags = 0;
            j->served = 0;
            if (start_process(j))
                finish_process(j);
        }
    }
    if (j->rc != 0 && j->ndiags == 0)
        add_diag(j, NULL, 0, 0, 1, "the generator failed without a diagnostic");
}

static void wait_all_at_exit(void)
{
    while (running_jobs)
        finish_job(running_jobs);
}

TpJob *tp_start(const char *input, const char *out_dir, const TpArgs *flags, int async)
{
    TpJob *j = xmalloc(sizeof *j);
    *j = (TpJob){.fd = -1, .rc = 2};
    make_dirs(out_dir);
    j->input = xstrdup(input);
    j->out_c = twin_path(out_dir, input, ".twin.c");
    j->out_h = twin_path(out_dir, input, ".twin.h");
    for (int i = 0; i < flags->n; i++)
        tp_args_add(&j->flags, flags->v[i]);
    if (!atexit_done)
        atexit_done = atexit(wait_all_at_exit) == 0;
    if (start_served(j) == 0 || start_process(j)) {
        j->next_running = running_jobs;
        running_jobs = j;
        if (!async)
            finish_job(j);
    }
    return j;
}

int tp_wait(TpJob *j)
{
    if (j->fd >= 0)
        finish_job(j);
    return j->rc;
}

int tp_ndiags(const TpJob *j) { return j->ndiags; }
const TpDiag *tp_diag(const TpJob *j, int i) { return &j->diags[i]; }

void tp_free(TpJob *j)
{
    if (!j)
        return;
    tp_wait(j);
    for (int i = 0; i < j->ndiags; i++) {
        free(j->diags[i].file);
        free(j->diags[i].msg);
    }
    free(j->diags);
    tp_args_free(&j->flags);
    free(j->input);
    free(j->out_c);
    free(j->out_h);
    free(j);
}
