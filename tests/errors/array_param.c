// expect: 3:28: error: array parameter 'curve' ('const double *') of 'first' is not supported yet (arrays arrive with loop support)
#pragma aad
double first(const double *curve, double w)
{
    return w;
}
