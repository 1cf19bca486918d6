// expect: 11:27: error: passing array 'x' to #pragma aad function 'first' is not supported yet (in 'twice_first')
#pragma aad
double first(int n, const double x[n])
{
    return x[0];
}

#pragma aad
double twice_first(int n, const double x[n])
{
    return 2.0 * first(n, x);
}
