// expect: 2:13: error: checkpoint(j = 100): no 'for' loop of 'f' initialises 'j' in its header
#pragma aad checkpoint(j = 100)
double f(double x, int n)
{
    double s = x;
    for (int i = 0; i < n; i++)
        s = s * x;
    return s;
}
