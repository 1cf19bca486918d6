// expect: 6:12: error: the length of array 'w' in 'scratch' uses 'm', which is not an integer parameter
#pragma aad
double scratch(double a, int n)
{
    int m = 2 * n;
    double w[m];
    w[0] = a;
    return w[0];
}
