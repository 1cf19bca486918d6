// expect: 2:13: error: check(n = 2.5): 'n' of 'f' is int; give an integer in its range
#pragma aad check(x = 1.5, n = 2.5)
double f(double x, int n)
{
    return x * n;
}
