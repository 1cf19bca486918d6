// expect: 7:18: error: use of 'g_rate', which is not a parameter, a local or a constant, in 'discount' (global variables are not supported)
double g_rate = 0.05;

#pragma aad
double discount(double t)
{
    return 1.0 - g_rate * t;
}
