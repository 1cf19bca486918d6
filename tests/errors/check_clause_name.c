// expect: 2:13: error: 'sigma' in clause 'check' is not an input parameter of 'f'
#pragma aad check(x = 1, sigma = 0.2)
double f(double x)
{
    return x * x;
}
