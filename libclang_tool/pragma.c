/*
 * pragma.c — find `#pragma aad [clause(args) ...]` in the main file.
 *
 * libclang does not expose unknown pragmas as cursors, so we read the raw
 * tokens of the main file: '#' 'pragma' 'aad' on one line, then clauses up to
 * the end of that line.  Pragmas inside regions the preprocessor skipped
 * (#if 0 ...) are ignored.  Binding a pragma to the function definition that
 * follows it happens in lower.c, which walks the top-level cursors anyway.
 *
 * Clauses:  passive(name, ...)   inputs that carry no derivative
 *           uniform(name, ...)   inputs that every lane shares (lane stride 0)
 *           check(name = number, ...)
 *                                a point inside the function's domain where
 *                                `twinc check` starts (the registry carries it)
 *           checkpoint(k = K, ...)
 *                                the `for` loop whose header initialises k is
 *                                checkpointed every K iterations (lower.c)
 */
#include <clang-c/Index.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twinc_gen.h"

static bool in_skipped(CXSourceRangeList *sk, unsigned offset)
{
    for (unsigned i = 0; sk && i < sk->count; i++) {
        unsigned s, e;
        clang_getExpansionLocation(clang_getRangeStart(sk->ranges[i]), NULL, NULL, NULL, &s);
        clang_getExpansionLocation(clang_getRangeEnd(sk->ranges[i]), NULL, NULL, NULL, &e);
        if (offset >= s && offset < e)
            return true;
    }
    return false;
}

static const char *const known_clauses[] = {"passive", "uniform", "check", "checkpoint"};

/* Parse clauses from toks[i..end) (all on the pragma's line). */
static void parse_clauses(Unit *u, Pragma *p, const Tok *t, int i, int end)
{
    while (i < end) {
        SrcLoc loc = {u->file, (int)t[i].line, (int)t[i].col};
        if (t[i].kind != CXToken_Identifier) {
            diag_error(u->diag, loc, "expected a clause name in '#pragma aad', found '%s'", t[i].text);
            return;
        }
        bool known = false;
        for (size_t k = 0; k < sizeof known_clauses / sizeof *known_clauses; k++)
            known |= !strcmp(t[i].text, known_clauses[k]);
        if (!known) {
            diag_error(u->diag, loc, "unknown clause '%s' in '#pragma aad' (known: passive, uniform, check, "
                       "checkpoint)",
                       t[i].text);
            return;
        }
        PragmaClause *c = arena_alloc(u->arena, sizeof *c);
        c->name = t[i].text;
        c->loc = loc;
        vec_push(u->arena, &p->clauses, c);
        i++;
        if (i >= end || strcmp(t[i].text, "(")) {
            diag_error(u->diag, loc, "expected '(' after '%s' in '#pragma aad'", c->name);
            return;
        }
        i++;
        for (;;) {
            if (i >= end) {
                diag_error(u->diag, loc, "missing ')' in clause '%s' of '#pragma aad'", c->name);
                return;
            }
            if (t[i].kind != CXToken_Identifier) {
                SrcLoc l2 = {u->file, (int)t[i].line, (int)t[i].col};
                diag_error(u->diag, l2, "expected a parameter name in clause '%s', found '%s'", c->name,
                           t[i].text);
                return;
            }
            vec_push(u->arena, &c->args, (void *)t[i].text);
            i++;
            if (!strcmp(c->name, "check") || !strcmp(c->name, "checkpoint")) { /* name = [+-]number */
                const char *pname = t[i - 1].text;
                SrcLoc l3 = {u->file, (int)t[i - 1].line, (int)t[i - 1].col};
                if (i >= end || strcmp(t[i].text, "=")) {
                    diag_error(u->diag, l3, "expected '=' and a number after '%s' in clause '%s'",
                               pname, c->name);
                    return;
                }
                i++;
                const char *sign = "";
                if (i < end && (!strcmp(t[i].text, "-") || !strcmp(t[i].text, "+")))
                    sign = t[i++].text;
                if (i >= end || t[i].kind != CXToken_Literal || t[i].text[0] == '\'' ||
                    t[i].text[0] == '"') {
                    diag_error(u->diag, l3, "expected a number for '%s' in clause '%s'", pname, c->name);
                    return;
                }
                size_t n = strlen(sign) + strlen(t[i].text) + 1;
                char *v = arena_alloc(u->arena, n);
                snprintf(v, n, "%s%s", sign, t[i].text);
                vec_push(u->arena, &c->vals, v);
                i++;
            }
            if (i < end && !strcmp(t[i].text, ",")) {
                i++;
                continue;
            }
            if (i < end && !strcmp(t[i].text, ")")) {
                i++;
                break;
            }
            diag_error(u->diag, loc, "expected ',' or ')' in clause '%s' of '#pragma aad'", c->name);
            return;
        }
    }
}

Tok *file_tokens(Unit *u, CXTranslationUnit tu, unsigned *count)
{
    CXFile file = clang_getFile(tu, u->file);
    size_t size = 0;
    CXToken *ctoks = NULL;
    unsigned ntoks = 0;
    Tok *t = NULL;
    *count = 0;
    if (!file || !clang_getFileContents(tu, file, &size))
        return NULL;
    CXSourceRange all = clang_getRange(clang_getLocationForOffset(tu, file, 0),
                                       clang_getLocationForOffset(tu, file, (unsigned)size));
    clang_tokenize(tu, all, &ctoks, &ntoks);
    t = arena_alloc(u->arena, (ntoks + 1) * sizeof *t);
    for (unsigned i = 0; i < ntoks; i++) {
        CXString s = clang_getTokenSpelling(tu, ctoks[i]);
        t[i].text = arena_strdup(u->arena, clang_getCString(s));
        clang_disposeString(s);
        t[i].kind = clang_getTokenKind(ctoks[i]);
        clang_getExpansionLocation(clang_getTokenLocation(tu, ctoks[i]), NULL, &t[i].line, &t[i].col,
                                   &t[i].offset);
        t[i].end = t[i].offset + (unsigned)strlen(t[i].text);
    }
    /* a sentinel past the end */
    t[ntoks].text = "";
    t[ntoks].kind = CXToken_Comment;
    t[ntoks].offset = t[ntoks].end = (unsigned)size;
    if (ctoks)
        clang_disposeTokens(tu, ctoks, ntoks);
    *count = ntoks;
    return t;
}

void pragma_scan(Unit *u, CXTranslationUnit tu, const Tok *t, unsigned ntoks, PtrVec *pragmas)
{
    CXFile file = clang_getFile(tu, u->file);
    CXSourceRangeList *skipped = file ? clang_getSkippedRanges(tu, file) : NULL;
    for (unsigned i = 0; i + 2 < ntoks; i++) {
        if (strcmp(t[i].text, "#") || strcmp(t[i + 1].text, "pragma") || strcmp(t[i + 2].text, "aad") ||
            t[i + 1].line != t[i].line || t[i + 2].line != t[i].line)
            continue;
        if (in_skipped(skipped, t[i].offset))
            continue;
        Pragma *p = arena_alloc(u->arena, sizeof *p);
        p->loc = (SrcLoc){u->file, (int)t[i].line, (int)t[i].col};
        p->offset = t[i].offset;
        unsigned end = i + 3;
        while (end < ntoks && t[end].line == t[i].line)
            end++;
        p->end_offset = t[end].offset;
        parse_clauses(u, p, t, (int)i + 3, (int)end);
        vec_push(u->arena, pragmas, p);
        i = end - 1;
    }
    if (skipped)
        clang_disposeSourceRangeList(skipped);
}
