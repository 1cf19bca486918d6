// expect: 5:12: error: local array 'm' in 'trace' must hold double (one dimension)
#pragma aad
double trace(double a)
{
    double m[3][3];
    m[0][0] = a;
    return m[0][0];
}
