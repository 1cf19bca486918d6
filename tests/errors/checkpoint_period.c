// expect: 2:13: error: checkpoint(i = 0): give a whole number of iterations >= 1 between snapshots
#pragma aad checkpoint(i = 0)
double f(double x, int n)
{
    double s = x;
    for (int i = 0; i < n; i++)
        s = s * x;
    return s;
}
