// expect: 11:12: error: argument 'x' carries a derivative into parameter 'z' of 'scale', which is declared passive; the derivative would be lost
#pragma aad passive(z)
double scale(double x, double z)
{
    return x * z;
}

#pragma aad
double twice_scaled(double x)
{
    return scale(x, x);
}
