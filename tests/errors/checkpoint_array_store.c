// expect: 7:9: error: checkpoint(i = 10): the loop of 'f' stores into an array; a checkpointed loop may only read arrays (its snapshots hold scalars)
#pragma aad checkpoint(i = 10)
void f(double x, int n, double v[n])
{
    double s = x;
    for (int i = 0; i < n; i++) {
        v[i] = s;
        s = s * x;
    }
}
