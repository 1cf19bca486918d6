// expect: 5:12: error: unsupported pointer dereference in 'second' (only '*o' for a 'double *o' output)
#pragma aad
double second(int n, const double x[n])
{
    return *(x + 1);
}
