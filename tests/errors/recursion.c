// expect: 7:16: error: recursive call to 'fact' in 'fact' is not supported
#pragma aad
double fact(double x, int n)
{
    if (n <= 1)
        return x;
    return x * fact(x, n - 1);
}
