// expect: 9:12: error: call to 'my_norm_cdf', which is neither a #pragma aad function of this file nor a supported math builtin, in 'digital'
#include <math.h>

double my_norm_cdf(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

#pragma aad
double digital(double d)
{
    return my_norm_cdf(d);
}
