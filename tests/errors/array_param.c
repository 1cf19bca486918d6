// expect: 3:28: error: input array 'curve' of 'first' needs its length: write 'const double curve[n]' with n an integer parameter before it
#pragma aad
double first(const double *curve, double w)
{
    return w;
}
