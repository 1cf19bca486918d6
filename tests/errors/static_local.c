// expect: 5:19: error: static local 'calls' in 'counter' is not supported (twins keep no state between calls)
#pragma aad
double counter(double x)
{
    static double calls = 0.0;
    return x + calls;
}
