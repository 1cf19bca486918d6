// expect: 5:12: error: output '*acc' is read before it is assigned in 'accumulate'
#pragma aad
void accumulate(double x, double *acc)
{
    *acc = *acc + x;
}
