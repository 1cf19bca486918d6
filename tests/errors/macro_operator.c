// expect: 7:12: error: operator comes from a macro expansion in 'area'; write the operator in the source (or make the macro a #pragma aad function)
#define MUL(a, b) a * b

#pragma aad
double area(double w, double h)
{
    return MUL(w, h) + w;
}
