// expect: 7:12: error: expression of type 'double[n]' is not supported in #pragma aad function 'f' (an array may only be indexed, a[i]: it may not escape as a pointer)
/* an array kept past the call could be written behind the twin's back */
static double *keep;
#pragma aad
double f(int n, double v[n], double x)
{
    keep = v;
    return x * v[0];
}
