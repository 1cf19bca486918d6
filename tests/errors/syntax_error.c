// expect: 5:16: error: expected expression
#pragma aad
double broken(double x)
{
    return x * ;
}
