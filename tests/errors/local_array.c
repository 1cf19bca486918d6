// expect: 5:12: error: local array 'v' in 'pick' is not supported yet (arrays arrive with loop support)
#pragma aad
double pick(double a, double b)
{
    double v[2];
    v[0] = a;
    v[1] = b;
    return v[0] * v[1];
}
