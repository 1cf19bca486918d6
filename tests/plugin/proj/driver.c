/*
 * driver.c — runs every kernel linked into this program through its registry
 * (twinc_registries(), defined by the twin files) and prints value and
 * adjoint gradient at fixed points, to the last bit, sorted by kernel name.
 * Two builds of the same sources must print the same text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twinc.h"

const twinc_registry *const *twinc_registries(size_t *count);

enum { LANES = 3, MAXP = 32 };

/* a sensible value for each parameter name of the samples, 0.5 otherwise */
static double value_of(const char *name)
{
    static const struct { const char *name; double v; } table[] = {
        {"S", 100}, {"K", 95}, {"r", 0.03}, {"q", 0.01}, {"sigma", 0.2}, {"T", 1.5},
        {"F", 100}, {"alpha", 2.0}, {"beta", 0.5}, {"rho", -0.3}, {"nu", 0.4},
        {"df", 0.97}, {"vol", 0.2}, {"x", 0.3}, {"y", 0.8},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (!strcmp(table[i].name, name))
            return table[i].v;
    return 0.5;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const twinc_kernel *const *)a)->name, (*(const twinc_kernel *const *)b)->name);
}

int main(void)
{
    size_t nregs = 0;
    const twinc_registry *const *regs = twinc_registries(&nregs);
    const twinc_kernel *ks[256];
    int nk = 0;
    for (size_t r = 0; r < nregs; r++)
        for (int i = 0; i < regs[r]->nkernels && nk < 256; i++)
            ks[nk++] = &regs[r]->kernels[i];
    qsort(ks, (size_t)nk, sizeof *ks, by_name);
    for (int i = 0; i < nk; i++) {
        const twinc_kernel *k = ks[i];
        if (k->nparams > MAXP || k->workspace)
            return 2;
        double val[MAXP][LANES], bar[MAXP][LANES];
        long ival[MAXP][LANES];
        twinc_arg v[MAXP], b[MAXP];
        for (int p = 0; p < k->nparams; p++) {
            const twinc_param *pp = &k->params[p];
            for (int l = 0; l < LANES; l++) {
                val[p][l] = pp->role == TWINC_ROLE_IN ? value_of(pp->name) * (1 + 0.01 * l) : 0;
                bar[p][l] = pp->role == TWINC_ROLE_IN ? 0 : 1; /* seed every output */
                ival[p][l] = 2 + l;
            }
            int is_int = pp->type != TWINC_T_DOUBLE;
            int shared = (pp->flags & TWINC_PARAM_UNIFORM) != 0;
            if (is_int && pp->type != TWINC_T_LONG && pp->type != TWINC_T_ULONG)
                return 2; /* the samples have none; keep the driver simple */
            v[p] = (twinc_arg){is_int ? (void *)ival[p] : (void *)val[p], shared ? 0 : 1, 0};
            b[p] = (twinc_arg){bar[p], 1, 0};
        }
        int rc = k->adjoint(LANES, v, b, NULL);
        printf("%s: status %d\n", k->name, rc);
        for (int p = 0; p < k->nparams; p++)
            for (int l = 0; l < LANES; l++)
                printf("  %s[%d] = %.17g  bar %.17g\n", k->params[p].name, l, val[p][l], bar[p][l]);
    }
    printf("%d kernels\n", nk);
    return nk > 0 ? 0 : 1;
}
