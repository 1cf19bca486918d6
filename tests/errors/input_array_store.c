// expect: 5:10: error: read-only variable is not assignable
#pragma aad
double bump(int n, const double x[n])
{
    x[0] = 1.0;
    return x[0];
}
