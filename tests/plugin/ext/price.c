/* price.c — an external project's kernel: a discounted forward. */
#include <math.h>

#pragma aad
double forward_value(double S, double r, double q, double T)
{
    return S * exp((r - q) * T);
}
