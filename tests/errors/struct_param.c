// expect: 5:42: error: parameter 'o' of 'intrinsic' has unsupported type 'struct option'
struct option { double strike; };

#pragma aad
double intrinsic(double s, struct option o)
{
    return s - o.strike;
}
