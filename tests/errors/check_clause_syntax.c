// expect: 2:19: error: expected '=' and a number after 'x' in clause 'check'
#pragma aad check(x)
double f(double x)
{
    return x * x;
}
