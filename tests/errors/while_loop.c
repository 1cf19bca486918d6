// expect: 5:5: error: 'while' loop in 'halve' is not supported yet (loops arrive with loop support)
#pragma aad
double halve(double x)
{
    while (x > 1.0)
        x = x / 2.0;
    return x;
}
