// expect: 6:5: error: 'for' loop in 'sum_powers' is not supported yet (loops arrive with loop support)
#pragma aad
double sum_powers(double x, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += x;
    return s;
}
