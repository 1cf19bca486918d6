// expect: 3:20: error: parameter 'x' of 'twice' has unsupported type 'float' (float is not supported yet: use double)
#pragma aad
double twice(float x)
{
    return 2.0 * x;
}
