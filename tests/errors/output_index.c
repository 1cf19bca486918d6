// expect: 6:5: error: array subscript of a 'double *' output in 'two': only o[0] is accepted (write 'double o[n]' for an array the function fills)
#pragma aad
void two(double x, double *out)
{
    out[0] = x;
    out[1] = 2.0 * x;
}
