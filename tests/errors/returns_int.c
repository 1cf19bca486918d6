// expect: 3:5: error: #pragma aad function 'sign' must return double or void, not 'int'
#pragma aad
int sign(double x)
{
    return x > 0.0;
}
