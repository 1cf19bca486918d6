// expect: 8:1: error: output '*gamma' of function 'greeks' is not assigned on every path at the end of the function
#pragma aad
void greeks(double s, double *delta, double *gamma)
{
    *delta = 2.0 * s;
    if (s > 1.0)
        *gamma = 2.0;
}
