// expect: 6:13: error: local pointer 'p' in 'f': an array may not escape into a pointer (aliases are not tracked); index the array itself
/* writes through an alias of v would be invisible to the adjoint's tape */
#pragma aad
double f(int n, double v[n], double x)
{
    double *p = v;
    p[0] = x;
    return v[0] * x;
}
