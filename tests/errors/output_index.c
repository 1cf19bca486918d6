// expect: 6:5: error: array subscript in 'two' is not supported yet (arrays arrive with loop support; only o[0] of a 'double *o' output is accepted)
#pragma aad
void two(double x, double *out)
{
    out[0] = x;
    out[1] = 2.0 * x;
}
