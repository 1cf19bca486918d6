// expect: 2:1: error: '#pragma aad' must be followed by a function definition, but is followed by a variable declaration
#pragma aad
static const double rate = 0.05;

double discount(double t)
{
    return 1.0 - rate * t;
}
