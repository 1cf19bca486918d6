// expect: 2:24: error: unknown clause 'fast' in '#pragma aad' (known: passive, uniform, check, checkpoint)
#pragma aad passive(z) fast
double f(double x, double z)
{
    return x * z;
}
