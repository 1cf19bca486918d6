// expect: 7:15: error: local 'f' of type 'payoff_fn' is not supported in 'apply' (double and integer scalars only)
typedef double (*payoff_fn)(double);

#pragma aad
double apply(double x, int which)
{
    payoff_fn f = 0;
    return f(x) * which;
}
