// expect: 5:5: error: 'switch' in 'payoff' is not supported; use if/else
#pragma aad
double payoff(double s, int kind)
{
    switch (kind) {
    case 0: return s;
    default: return -s;
    }
}
