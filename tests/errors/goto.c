// expect: 6:9: error: 'goto' in 'clip' is not supported
#pragma aad
double clip(double x)
{
    if (x > 1.0)
        goto out;
    x = x * 2.0;
out:
    return x;
}
