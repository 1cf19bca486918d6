/*
 * builtins.c — the builtin table, expanded from builtins.h (ORDER BUILTIN).
 */
#include <string.h>

#include "twinc_gen.h"

const Builtin builtin_table[B_COUNT] = {
#define X(id, name, alias, arity, kind, value, pa, pb) {name, alias, arity, kind, value, {pa, pb}},
    TWINC_BUILTINS(X)
#undef X
};

int builtin_lookup(const char *name)
{
    for (int i = 0; i < B_COUNT; i++) {
        const Builtin *b = &builtin_table[i];
        if (!strcmp(b->name, name) || (b->alias && !strcmp(b->alias, name)))
            return i;
    }
    return -1;
}
